/**
 * `berth verify IMAGE [--identity claim=glob …] [--key FILE … | --registry-keys]`: checks, offline
 * of any transparency log, that an image carries a valid push attestation: reads the image's
 * Sigstore-bundle referrers through the registry client (`remote/`), verifies each bundle's DSSE
 * signature with the given public keys (@sigstore/verify, `attestations/verify.ts`), that the
 * statement's subject is this image's digest, and that the identity it states meets every
 * `--identity` condition (the same matching as the server's rules, `attestations/policy.ts`).
 *
 * Keys: `--key FILE` pins public keys (the way to verify against a registry you do not trust to
 * tell you its keys); `--registry-keys` (the default without `--key`) fetches them from the
 * registry's `/api/v1/attestations/keys`. Exit status 0 only when some attestation passes all checks.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { AttestationKeysView } from '../api/attestations.js';
import { refreshTokenUser } from '../api/principals.js';
import { urls } from '../api/urls.js';
import { failedCondition } from '../attestations/policy.js';
import { identityOf, type PushPredicate } from '../attestations/statement.js';
import { AttestationError, maxBundleBytes, verifyBundle, type TrustedKey } from '../attestations/verify.js';
import { trustedKey } from '../attestations/keys.js';
import { loadCredentials, defaultLocations } from '../client/credentials.js';
import { mediaTypes } from '../oci/media-types.js';
import { RemoteRegistry, type RemoteCredentials } from '../remote/client.js';
import { registryHost, registryUrl } from '../remote/reference.js';
import { AdminError, apiRequest, connectRegistry } from './admin-client.js';
import { print, printJson, table } from './admin.js';
import { parseImageReference } from './history.js';

export interface VerifyOptions {
  registry?: string | undefined;
  json?: boolean | undefined;
  /** `claim=glob` conditions (repeatable). */
  identity?: string[] | undefined;
  /** PEM public key files (repeatable). */
  key?: string[] | undefined;
  registryKeys?: boolean | undefined;
}

export interface VerifyResult {
  image: string;
  digest: string;
  keys: Array<{ hint: string; source: string }>;
  attestations: Array<{
    digest: string;
    verified: boolean;
    error: string | null;
    keyHint: string | null;
    predicateType: string | null;
    push: PushPredicate | null;
  }>;
  verified: boolean;
}

export async function verify(reference: string, options: VerifyOptions): Promise<void> {
  const result = await verifyImage(reference, options);
  if (options.json) printJson(result);
  else {
    print(
      table([
        ['ATTESTATION', 'KEY', 'PUSHED BY', 'RESULT'],
        ...result.attestations.map((a) => [
          short(a.digest),
          a.keyHint ? a.keyHint.slice(0, 12) : '-',
          pushedBy(a.push),
          a.verified ? 'verified' : `FAILED: ${a.error}`,
        ]),
      ]),
    );
  }
  if (!result.verified) {
    const why = result.attestations.length === 0 ? 'it carries no attestation' : 'no attestation passed every check (see above)';
    throw new AdminError(`${result.image}@${result.digest} is not verified: ${why}`);
  }
  if (!options.json) print(`verified: ${result.image}@${result.digest}`);
}

export async function verifyImage(reference: string, options: VerifyOptions): Promise<VerifyResult> {
  const ref = parseImageReference(reference);
  const registry = (ref.registry ?? options.registry ?? process.env['BERTH_REGISTRY'] ?? '').trim();
  if (!registry) throw new AdminError('no registry given: name it in the image (HOST:PORT/REPO), pass --registry or set BERTH_REGISTRY');
  const conditions = parseConditions(options.identity ?? []);
  const session = await connectRegistry({ registry }, [`repository:${ref.repository}:pull`], { anonymous: true });
  const keys = await trustedKeys(options, () => registryKeys(session));

  const remote = new RemoteRegistry({ baseUrl: registryUrl(registry), credentials: await credentialsFor(registry), userAgent: 'berth-verify' });
  const digest = ref.digest ?? (await remote.resolve(ref.repository, ref.tag ?? 'latest'))?.digest;
  if (!digest) throw new AdminError(`${registry}/${ref.repository}:${ref.tag ?? 'latest'} does not exist`);
  const image = `${registry}/${ref.repository}`;
  const attestations: VerifyResult['attestations'] = [];
  for (const descriptor of await remote.referrers(ref.repository, digest, mediaTypes.sigstoreBundle)) {
    const entry: VerifyResult['attestations'][number] = {
      digest: descriptor.digest,
      verified: false,
      error: null,
      keyHint: null,
      predicateType: null,
      push: null,
    };
    try {
      const bundle = await fetchBundle(remote, ref.repository, descriptor.digest);
      const verified = await verifyBundle(bundle, keys, digest);
      entry.keyHint = verified.keyHint;
      entry.predicateType = verified.statement.predicateType;
      entry.push = verified.push ?? null;
      entry.error = identityProblem(conditions, verified.push);
      entry.verified = entry.error === null;
    } catch (err) {
      if (!(err instanceof AttestationError)) throw err;
      entry.error = err.message;
    }
    attestations.push(entry);
  }
  return { image, digest, keys: keys.map((k) => ({ hint: k.hint, source: k.source })), attestations, verified: attestations.some((a) => a.verified) };
}

/** `claim=glob` → conditions; a claim may be written with its alias (`issuer`, `subject`). */
export function parseConditions(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0 || eq === value.length - 1)
      throw new AdminError(`--identity ${JSON.stringify(value.slice(0, 100))}: expected claim=glob, e.g. ref=refs/tags/*`);
    out[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return out;
}

function identityProblem(conditions: Record<string, string>, push: PushPredicate | undefined): string | null {
  if (Object.keys(conditions).length === 0) return null;
  if (!push) return 'not a Berth push attestation: its identity cannot be checked';
  const failed = failedCondition(conditions, identityOf(push));
  return failed ? `identity: ${failed.claim} does not match ${failed.glob}` : null;
}

async function trustedKeys(options: VerifyOptions, fromRegistry: () => Promise<AttestationKeysView>): Promise<Array<TrustedKey & { source: string }>> {
  const keys: Array<TrustedKey & { source: string }> = [];
  for (const file of options.key ?? []) {
    const pem = await readFile(file, 'utf8').catch((err: unknown) => {
      throw new AdminError(`cannot read --key ${file}: ${(err as Error).message}`);
    });
    try {
      keys.push({ ...trustedKey(pem), source: file });
    } catch {
      throw new AdminError(`--key ${file} is not a PEM public key`);
    }
  }
  if (options.registryKeys || keys.length === 0) {
    for (const key of (await fromRegistry()).keys) keys.push({ ...trustedKey(key.publicKeyPem), source: 'registry' });
  }
  if (keys.length === 0) throw new AdminError('no keys to verify with: the registry has never signed an attestation; pass --key FILE');
  return keys;
}

async function registryKeys(session: Awaited<ReturnType<typeof connectRegistry>>): Promise<AttestationKeysView> {
  const res = await apiRequest(session, 'GET', urls.api.attestationKeys());
  if (res.status !== 200) throw new AdminError(`${session.registry} did not give its attestation keys (HTTP ${res.status}): pass --key FILE`);
  return res.body as AttestationKeysView;
}

/** The registry client's credentials: the saved login (`berth login`, docker or podman login), else anonymous. */
async function credentialsFor(registry: string): Promise<RemoteCredentials> {
  const saved = await loadCredentials(registryHost(registry), defaultLocations(process.env));
  if (!saved) return { kind: 'anonymous' };
  return 'refreshToken' in saved ? { kind: 'basic', username: refreshTokenUser, password: saved.refreshToken } : { kind: 'basic', ...saved };
}

/** The bundle layer of an attestation referrer, read in full (bounded) and checked against its digest. */
async function fetchBundle(remote: RemoteRegistry, repository: string, digest: string): Promise<Buffer> {
  const manifest = await remote.getManifest(repository, digest);
  const layer = manifest.manifest.blobs.find((d) => d.mediaType === mediaTypes.sigstoreBundle);
  if (!layer) throw new AttestationError('the referrer holds no Sigstore bundle layer');
  if (layer.size > maxBundleBytes) throw new AttestationError('the bundle is too large');
  const blob = await remote.openBlob(repository, layer.digest);
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of blob.body as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > layer.size) {
      blob.body.destroy();
      throw new AttestationError('the bundle is larger than its descriptor says');
    }
    chunks.push(chunk);
  }
  const bytes = Buffer.concat(chunks);
  if (`sha256:${createHash('sha256').update(bytes).digest('hex')}` !== layer.digest) throw new AttestationError('the bundle blob does not match its digest');
  return bytes;
}

function short(digest: string): string {
  return digest.slice(0, 19);
}

function pushedBy(push: PushPredicate | null): string {
  if (!push) return '-';
  const claims = push.federation?.claims ?? {};
  const workflow = claims['job_workflow_ref'];
  if (typeof workflow === 'string') return workflow;
  return push.federation ? push.federation.subject : push.principal.name;
}
