/**
 * Push attestations and their policy, as the registry's hooks and as services:
 * - `pushHook` (before a manifest push's transaction): refuses a tag a push rule reserves for a
 *   workload the pusher is not, and signs the push attestation that the registry then writes in the
 *   push's own transaction (`registry/push-hooks.ts`), so no image is visible without it.
 * - `pullGate` (before a manifest is served): refuses images a pull rule covers when none of their
 *   attestations satisfies it. Verified evidence is cached per repository and digest.
 * - `status` (history, preview), `publicKeys` and `rotate` for the API.
 * Decisions are `policy.ts`'s pure functions; this file gathers evidence and signs.
 */
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics/index.js';
import { parseDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { parseManifest } from '../oci/manifest.js';
import { isIndexMediaType, mediaTypes } from '../oci/media-types.js';
import type { CompanionManifest, PendingPush, Registry } from '../registry/index.js';
import type { AuditIndex } from '../metadata/auth-store.js';
import type { ManifestRecord } from '../metadata/store.js';
import type { Reference } from '../oci/names.js';
import type { Actor } from '../shared/actor.js';
import type { Clock } from '../shared/clock.js';
import type {
  AttestationKeysView,
  AttestationRequirementView,
  AttestationSummaryView,
  AttestationView,
  ImageAttestationsView,
  RotatedAttestationKeyView,
} from '../api/attestations.js';
import { emptyConfig, referrerManifest, toBundle } from './bundle.js';
import { signEnvelope } from './dsse.js';
import { trustedKey, type AttestationKeys } from './keys.js';
import { evaluatePull, evaluatePush, rulesFor, type AttestationRule, type Decision, type Evidence } from './policy.js';
import { identityOf, inTotoPayloadType, pushPredicate, pushPredicateType, pushStatement, type PushPredicate } from './statement.js';
import { AttestationError, maxBundleBytes, verifyBundle, type TrustedKey } from './verify.js';

export interface AttestationServiceOptions {
  config: Config['attestations'];
  /** `auth.publicUrl`: its host names the registry in attestations unless `registryName` is set. */
  publicUrl: string | undefined;
  registry: Registry;
  keys: AttestationKeys;
  /** Key rotations by hand are audited. */
  audit: AuditIndex;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

/** One attestation found on an image, verified or not (history, preview, `berth verify --registry`). */
export interface AttestationReport {
  /** The referrer manifest's digest. */
  digest: string;
  valid: boolean;
  /** Why it did not verify. */
  error: string | undefined;
  keyHint: string | undefined;
  /** True when signed by one of this registry's attestation keys. */
  berth: boolean;
  predicateType: string | undefined;
  push: PushPredicate | undefined;
}

/** Image evidence kept this many entries at most (oldest dropped first). */
const maxCached = 10_000;
/** Attestation referrers examined per image at most. */
const maxReferrers = 64;

export class AttestationService {
  private readonly rules: AttestationRule[];
  private readonly ruleKeys: TrustedKey[];
  private readonly cache = new Map<string, { at: number; reports: AttestationReport[] }>();
  private readonly signed;
  private readonly decisions;
  private readonly verifications;

  constructor(private readonly options: AttestationServiceOptions) {
    const { config, metrics } = options;
    this.ruleKeys = [];
    this.rules = config.policies.map((rule) => {
      const keys = rule.keys.map((pem) => trustedKey(pem));
      this.ruleKeys.push(...keys);
      return {
        name: rule.name,
        repositories: rule.repositories,
        tags: rule.tags,
        identity: rule.identity,
        keyHints: keys.map((k) => k.hint),
        enforce: rule.enforce,
      };
    });
    this.signed = metrics.counter('berth_attestations_signed_total', 'Push attestations signed and written with their push.');
    this.decisions = metrics.counter('berth_attestations_policy_decisions_total', 'Attestation policy decisions at pull and push.', ['stage', 'decision']);
    this.verifications = metrics.counter('berth_attestations_verifications_total', 'Attestation bundles verified by the server (cache misses).', ['result']);
  }

  /** True when some rule is enforced at pull (the registry then calls `pullGate`). */
  get enforcesPull(): boolean {
    return this.rules.some((r) => r.enforce.pull);
  }

  /** True when the registry needs `pushHook`: signing is on, or some rule is enforced at push. */
  get hooksPush(): boolean {
    return this.options.config.sign !== 'off' || this.rules.some((r) => r.enforce.push);
  }

  /** The registry's push hook (`registry/push-hooks.ts`). */
  async pushHook(push: PendingPush): Promise<readonly CompanionManifest[]> {
    const predicate = this.predicateFor(push);
    const pushRules = push.tags.length === 0 ? [] : rulesFor(this.rules, push.repository).filter((r) => r.enforce.push);
    if (pushRules.length > 0) {
      const pusher = { principal: push.pusher?.principalName, identity: predicate && identityOf(predicate) };
      let evidence: ReturnType<typeof evidenceOf> | undefined;
      // Every tag of the push is judged: one refused tag refuses the whole push (tags are all or none).
      for (const tag of push.tags) {
        let decision = evaluatePush(this.rules, push.repository, tag, pusher, []);
        // Not satisfied by the pusher: perhaps by an attestation the image already carries (a copy).
        if (!decision.allowed) {
          evidence ??= evidenceOf(await this.reports(push.repository, push.digest, false));
          decision = evaluatePush(this.rules, push.repository, tag, pusher, evidence);
        }
        this.decisions.inc({ stage: 'push', decision: decision.allowed ? 'allowed' : 'denied' });
        if (!decision.allowed) throw new RegistryError('DENIED', decision.reason, { rule: decision.rule });
      }
    }
    if (!predicate || !push.creates) return [];
    // What this replica verified for the digest before is stale once the new attestation commits.
    this.cache.delete(`${push.repository}@${push.digest}`);
    return [await this.attestation(push, predicate)];
  }

  /** The registry's pull gate: refuses a runnable image that a pull rule covers without satisfying evidence. */
  async pullGate(repository: string, manifest: ManifestRecord): Promise<void> {
    const rules = rulesFor(this.rules, repository).filter((r) => r.enforce.pull);
    if (rules.length === 0) return;
    const decision = await this.decidePull(repository, manifest, true);
    this.decisions.inc({ stage: 'pull', decision: decision.allowed ? 'allowed' : 'denied' });
    if (!decision.allowed) throw new RegistryError('DENIED', decision.reason, { rule: decision.rule });
  }

  /**
   * `GET /api/v1/repositories/{name}/attestations`: the image's attestations, freshly verified, and
   * what the pull rules decide for it (the preview: the same evaluation a GET runs).
   */
  async imageView(repository: string, reference: Reference): Promise<ImageAttestationsView> {
    const manifest = await this.options.registry.manifests.get(repository, reference, [], { gate: false });
    const reports = await this.reports(repository, manifest.digest, false);
    const pull = evaluatePull(this.rules, repository, runnable(manifest), evidenceOf(reports));
    return {
      repository,
      digest: manifest.digest,
      attestations: reports.map(attestationView),
      pull: { allowed: pull.allowed, rule: pull.rule ?? null, reason: pull.allowed ? null : pull.reason },
    };
  }

  /** Per digest: does it carry a valid push attestation (`berth history`). Uses the verification cache. */
  async summaries(repository: string, digests: readonly string[]): Promise<Record<string, AttestationSummaryView>> {
    const out: Record<string, AttestationSummaryView> = {};
    for (const digest of new Set(digests)) {
      const reports = await this.reports(repository, digest, true);
      const valid = reports.find((r) => r.valid && r.push !== undefined);
      const federation = valid?.push?.federation;
      out[digest] = {
        status: valid ? 'verified' : reports.length > 0 ? 'invalid' : 'none',
        identity: valid ? (federation ? federation.subject : (valid.push?.principal.name ?? null)) : null,
      };
    }
    return out;
  }

  /** `GET /api/v1/attestations/required`: the rules enforced at pull that govern `repository`. */
  requirement(repository: string): AttestationRequirementView {
    const rules = rulesFor(this.rules, repository)
      .filter((r) => r.enforce.pull)
      .map((r) => r.name);
    return { repository, required: rules.length > 0, rules };
  }

  /** `GET /api/v1/attestations/keys`: every signing key, newest first (public). */
  async keysView(): Promise<AttestationKeysView> {
    const keys = await this.options.keys.publicKeys();
    return {
      keys: keys.map((k) => ({
        hint: k.hint,
        algorithm: k.algorithm,
        publicKeyPem: k.publicKeyPem,
        createdAt: new Date(k.createdAt).toISOString(),
        retiredAt: k.retiredAt === undefined ? null : new Date(k.retiredAt).toISOString(),
      })),
    };
  }

  /** One key's PEM by hint, or `current` for the active one (creating the first key if none exists). */
  async keyPem(hint: string): Promise<string | undefined> {
    if (hint === 'current') await this.options.keys.signingKey();
    const keys = await this.options.keys.publicKeys();
    return (hint === 'current' ? keys.find((k) => k.retiredAt === undefined) : keys.find((k) => k.hint === hint))?.publicKeyPem;
  }

  /** `POST /api/v1/attestations/keys/rotate`: a new signing key; the old one stays published. Audited. */
  async rotate(actor: Actor): Promise<RotatedAttestationKeyView> {
    const hint = await this.options.keys.rotate();
    await this.options.audit.append({ at: this.options.clock.now(), event: 'admin.attestation-keys.rotated', ...actor, detail: { hint } });
    return { hint };
  }

  private async decidePull(repository: string, manifest: ManifestRecord, cached: boolean): Promise<Decision> {
    if (!runnable(manifest)) return { allowed: true, rule: undefined, by: undefined };
    return evaluatePull(this.rules, repository, true, evidenceOf(await this.reports(repository, manifest.digest, cached)));
  }

  /** The predicate this push's attestation states, or undefined when the push is not to be attested. */
  private predicateFor(push: PendingPush): PushPredicate | undefined {
    const { sign } = this.options.config;
    const pusher = push.pusher;
    if (!pusher || sign === 'off' || push.subject !== undefined) return undefined;
    if (sign === 'federated' && !isFederated(pusher.provenance)) return undefined;
    return pushPredicate({
      registry: this.registryName(push),
      repository: push.repository,
      // The statement names one tag: the first of a push's tags (a push with `?tag=` parameters sets
      // several at once; the digest, which the attestation is about, is the same for all).
      tag: push.tags[0],
      mediaType: push.mediaType,
      pusher,
      now: this.options.clock.now(),
    });
  }

  private async attestation(push: PendingPush, predicate: PushPredicate): Promise<CompanionManifest> {
    const key = await this.options.keys.signingKey();
    const statement = pushStatement(predicate, push.digest);
    const envelope = signEnvelope(inTotoPayloadType, Buffer.from(JSON.stringify(statement)), key.privateKey);
    const bundle = Buffer.from(JSON.stringify(toBundle(envelope, key.hint)));
    const content = referrerManifest(
      bundle,
      { digest: push.digest, mediaType: push.mediaType, size: push.size },
      pushPredicateType,
      new Date(predicate.pushedAt),
    );
    this.signed.inc();
    return { content, mediaType: mediaTypes.ociManifest, blobs: [emptyConfig, bundle] };
  }

  private registryName(push: PendingPush): string {
    const { registryName } = this.options.config;
    if (registryName) return registryName;
    if (this.options.publicUrl) return new URL(this.options.publicUrl).host;
    return push.request?.host || 'localhost';
  }

  /** Every attestation bundle referring to `repository@digest`, verified against Berth's keys and the rules' keys. */
  private async reports(repository: string, digest: string, cached: boolean): Promise<AttestationReport[]> {
    const key = `${repository}@${digest}`;
    const now = this.options.clock.now();
    const hit = this.cache.get(key);
    if (cached && hit && now - hit.at < this.options.config.verificationCacheMs) return hit.reports;
    const berthKeys = (await this.options.keys.publicKeys()).map((k) => ({ hint: k.hint, publicKeyPem: k.publicKeyPem }));
    const trusted = [...berthKeys, ...this.ruleKeys];
    const berthHints = new Set(berthKeys.map((k) => k.hint));
    const registry = this.options.registry;
    const index = JSON.parse((await registry.reads.referrers(repository, parseDigest(digest), mediaTypes.sigstoreBundle)).toString('utf8')) as {
      manifests: Array<{ digest: string }>;
    };
    const reports: AttestationReport[] = [];
    for (const { digest: referrer } of index.manifests.slice(0, maxReferrers)) {
      reports.push(await this.verifyReferrer(repository, digest, referrer, trusted, berthHints));
    }
    this.cache.delete(key);
    if (this.cache.size >= maxCached) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, { at: now, reports });
    return reports;
  }

  private async verifyReferrer(
    repository: string,
    subject: string,
    referrer: string,
    trusted: readonly TrustedKey[],
    berthHints: ReadonlySet<string>,
  ): Promise<AttestationReport> {
    const report: AttestationReport = {
      digest: referrer,
      valid: false,
      error: undefined,
      keyHint: undefined,
      berth: false,
      predicateType: undefined,
      push: undefined,
    };
    try {
      const record = await this.options.registry.manifests.get(repository, { kind: 'digest', digest: parseDigest(referrer) }, [], { gate: false });
      const layer = parseManifest(record.content, record.mediaType).blobs.find((d) => d.mediaType === mediaTypes.sigstoreBundle);
      if (!layer) throw new AttestationError('the referrer holds no Sigstore bundle layer');
      if (layer.size > maxBundleBytes) throw new AttestationError('the bundle is too large');
      const bundle = await this.readBlob(repository, layer.digest, layer.size);
      const verified = await verifyBundle(bundle, trusted, subject);
      Object.assign(report, {
        valid: true,
        keyHint: verified.keyHint,
        berth: berthHints.has(verified.keyHint),
        predicateType: verified.statement.predicateType,
        push: verified.push,
      });
      this.verifications.inc({ result: 'valid' });
    } catch (err) {
      if (!(err instanceof AttestationError) && !(err instanceof RegistryError)) throw err;
      report.error = err.message;
      this.verifications.inc({ result: 'invalid' });
    }
    return report;
  }

  private async readBlob(repository: string, digest: string, size: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let length = 0;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        length += chunk.length;
        if (length > size) return callback(new AttestationError('the bundle is larger than its descriptor says'));
        chunks.push(chunk);
        callback();
      },
    });
    await this.options.registry.blobs.send(repository, parseDigest(digest), sink, () => undefined);
    return Buffer.concat(chunks);
  }
}

function attestationView(r: AttestationReport): AttestationView {
  return {
    digest: r.digest,
    valid: r.valid,
    error: r.error ?? null,
    keyHint: r.keyHint ?? null,
    berth: r.berth,
    predicateType: r.predicateType ?? null,
    push: r.push ?? null,
  };
}

/** A federated login's provenance names its issuer; an import's or a sync's (server-side copies) does not. */
export function isFederated(provenance: Record<string, unknown> | undefined): provenance is Record<string, unknown> {
  return typeof provenance?.['iss'] === 'string';
}

/** Verified attestations as the policy's evidence. */
function evidenceOf(reports: readonly AttestationReport[]): Evidence[] {
  return reports
    .filter((r) => r.valid && r.keyHint !== undefined)
    .map((r) => ({
      berth: r.berth,
      keyHint: r.keyHint as string,
      identity: r.push && r.berth ? identityOf(r.push) : undefined,
      digest: r.digest,
    }));
}

/** True for what a runtime can start: an index, or an image manifest whose config is an image config. */
function runnable(manifest: ManifestRecord): boolean {
  if (isIndexMediaType(manifest.mediaType)) return true;
  const config = parseManifest(manifest.content, manifest.mediaType).blobs[0]?.mediaType;
  return config === mediaTypes.ociImageConfig || config === mediaTypes.dockerImageConfig;
}
