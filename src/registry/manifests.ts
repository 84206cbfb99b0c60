/**
 * Manifests: stored as their exact bytes, addressed by digest, tagged by any number of tags. A
 * manifest is accepted only when everything it references (config, layers, child manifests) is
 * already in the same repository; its `subject` may be absent (referrers can arrive before their
 * subject). Repositories the configuration names (and writers that ask, `allowMissing`) may keep
 * sparse manifests, whose references are partly absent (see `put`).
 */
import { Readable } from 'node:stream';
import { digestOf, parseDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { parseManifest } from '../oci/manifest.js';
import { isIndexMediaType, mediaTypes } from '../oci/media-types.js';
import { isValidTag, type Reference } from '../oci/names.js';
import type { ChangeOutbox, DeleteExpectation, ManifestRecord, MissingAllowance, NewManifest, Pusher } from '../metadata/store.js';
import { matchesRepositoryPattern } from '../shared/glob.js';
import type { ChangeContext, RequestInfo } from './changes.js';
import type { RegistryContext } from './context.js';
import type { PendingPush } from './push-hooks.js';
import type { UploadService } from './uploads.js';

export type { MissingAllowance };

/**
 * Most tags one push may set. The distribution spec (main, "Pushing Manifests", the `tag` query
 * parameters) says a registry "SHOULD support pushing at least 10 tags per request" and "MAY
 * return a `414 Request-URI Too Long` status if too many tags are included"; 100 tags of the
 * longest form (128 characters) still fit in Node's default 16 KiB of request headers.
 */
export const maxTagsPerPush = 100;

export interface PutManifestOptions {
  /**
   * Further tags to point at the manifest (a push's `tag` query parameters), set together with the
   * reference's own tag, if it is one, in the manifest's transaction: all of them or none. Every
   * tag is validated before anything is written.
   */
  tags?: readonly string[] | undefined;
  /**
   * Accept the manifest although references of these kinds are not in the repository (a sparse
   * manifest), besides what the configuration allows the repository (`registry.sparseIndexes`,
   * `registry.sparseImages`). For server-side writers, e.g. a pull-through cache that keeps an
   * upstream index (and so its digest) while it fetches the platforms, or the layers, on demand.
   */
  allowMissing?: MissingAllowance | undefined;
}

export interface PutManifestResult {
  digest: string;
  subject: string | undefined;
  /** Every tag the push pointed at the manifest, in request order (the response's `OCI-Tag`). */
  tags: string[];
  /** References the repository does not hold, accepted because sparse manifests are allowed there. */
  missing: string[];
}

/** OCI types a client must explicitly accept (Distribution refuses to serve them otherwise). */
const mustBeAccepted: ReadonlySet<string> = new Set([mediaTypes.ociManifest, mediaTypes.ociIndex]);

export class ManifestService {
  constructor(
    private readonly ctx: RegistryContext,
    private readonly uploads: UploadService,
  ) {}

  /**
   * Stores a manifest and points its tags at it, in one transaction with its push records and its
   * webhook events (one `push` event per tag; one untagged event for a push by digest without
   * tags). `pusher` and `request` (both optional: auth may be off, and server-side pushes such as
   * imports have no client request) go into the push records and the events.
   *
   * Referenced content must be in the repository (else MANIFEST_BLOB_UNKNOWN, nothing written),
   * except where sparse manifests are allowed: in a repository matching `registry.sparseIndexes`
   * (or with `allowMissing.manifests`) an index may list child manifests the repository does not
   * hold, and in one matching `registry.sparseImages` (or with `allowMissing.blobs`) an image
   * manifest may name a config or layers it does not hold. The distribution spec (v1.1, "Push")
   * permits both: "A registry MAY reject a manifest ... with descriptors in other fields that
   * reference a manifest or blob that does not exist in the registry." The absent references are
   * recorded like the present ones: pulling one answers 404 until it is pushed, which makes the
   * manifest whole without touching it again, and GC keeps what the present ones reference.
   */
  async put(
    repository: string,
    reference: Reference,
    bytes: Buffer,
    contentType: string | undefined,
    pusher?: Pusher,
    request?: RequestInfo,
    options: PutManifestOptions = {},
  ): Promise<PutManifestResult> {
    if (bytes.length > this.ctx.limits.maxManifestBytes) {
      throw new RegistryError('MANIFEST_TOO_LARGE', `manifest is larger than ${this.ctx.limits.maxManifestBytes} bytes`);
    }
    const tags = tagsOf(reference, options.tags);
    const algorithm = reference.kind === 'digest' ? reference.digest.algorithm : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (reference.kind === 'digest' && reference.digest.value !== digest) {
      throw new RegistryError('DIGEST_INVALID', 'manifest digest does not match its content', {
        expected: reference.digest.value,
        actual: digest,
      });
    }
    const manifest = parseManifest(bytes, contentType);
    // Lifecycle policies (immutability, quotas, rate limits) may refuse the push here; write-once
    // tags are checked again inside the transaction below.
    const blobs = manifest.blobs.map((d) => d.digest);
    const decision = await this.ctx.pushPolicy?.checkManifest({ repository, digest, size: bytes.length, tags, blobs, pusher });
    const companions = await this.companions(repository, tags, digest, bytes, manifest, pusher, request);
    const { missing, absent, conflicts } = await this.ctx.metadata.manifests.put(
      {
        repository,
        digest,
        mediaType: manifest.mediaType,
        content: bytes,
        subject: manifest.subject?.digest,
        artifactType: manifest.artifactType,
        annotations: manifest.annotations,
        blobs,
        manifests: manifest.manifests.map((d) => d.digest),
        tags,
        pusher,
        allowMissing: this.missingAllowed(repository, options.allowMissing),
        companions,
        writeOnceTags: decision?.writeOnceTags,
      },
      this.ctx.clock.now(),
      this.outbox({ actor: pusher, request }),
    );
    if (missing.length > 0) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references ${missing.length} unknown blob(s) or manifest(s)`, {
        missing: missing.slice(0, 20),
      });
    }
    if (decision && conflicts && conflicts.length > 0) throw await decision.conflict(conflicts);
    await decision?.committed();
    return { digest, subject: manifest.subject?.digest, tags, missing: absent ?? [] };
  }

  /** What may be absent from a manifest pushed to `repository`: the configuration's allowance, widened by the caller's. */
  private missingAllowed(repository: string, requested: MissingAllowance | undefined): MissingAllowance {
    const sparse = this.ctx.sparse;
    const matches = (patterns: readonly string[] | undefined) => (patterns ?? []).some((p) => matchesRepositoryPattern(p, repository));
    return {
      manifests: requested?.manifests === true || matches(sparse?.indexes),
      blobs: requested?.blobs === true || matches(sparse?.images),
    };
  }

  /**
   * The manifest for a tag or digest. `accept` is the client's list of media types (empty means
   * anything): OCI manifests are only served to clients that accept them, as Distribution does.
   * The pull gate (attestation policy) may refuse it with DENIED; `gate: false` is for reads that
   * serve no content (a HEAD) and the server's own reads (verifying attestations).
   */
  async get(repository: string, reference: Reference, accept: readonly string[], options: { gate?: boolean } = {}): Promise<ManifestRecord> {
    const record =
      reference.kind === 'tag'
        ? await this.ctx.metadata.manifests.getByTag(repository, reference.tag)
        : await this.ctx.metadata.manifests.getByDigest(repository, reference.digest.value);
    if (!record) throw new RegistryError('MANIFEST_UNKNOWN', undefined, { reference: referenceText(reference) });
    if (!acceptable(record.mediaType, accept)) {
      const kind = isIndexMediaType(record.mediaType) ? 'index' : 'manifest';
      throw new RegistryError('MANIFEST_UNKNOWN', `OCI ${kind} found, but the Accept header does not allow ${record.mediaType}`);
    }
    if (options.gate !== false) await this.ctx.pullGate?.(repository, record);
    // A client's read counts as a pull of the manifest (last-pull tracking, `RegistryContext.pulled`);
    // the server's own reads (`gate: false`) do not.
    if (options.gate !== false) this.ctx.pulled?.(repository, record.digest);
    return record;
  }

  /** The digest `tag` points at in `repository`, if it exists (for server-side copies deciding what to do). */
  async digestOfTag(repository: string, tag: string): Promise<string | undefined> {
    return (await this.ctx.metadata.manifests.getByTag(repository, tag))?.digest;
  }

  /** True if `repository` holds the manifest `digest`. */
  async has(repository: string, digest: string): Promise<boolean> {
    return (await this.ctx.metadata.manifests.getByDigest(repository, digest)) !== undefined;
  }

  /**
   * By tag: removes only the tag. By digest: removes the manifest and every tag on it. Either way
   * a `delete` webhook event naming `change.actor` and `change.request` is written with it.
   */
  async delete(repository: string, reference: Reference, change: ChangeContext = {}): Promise<void> {
    const now = this.ctx.clock.now();
    const outbox = this.outbox(change);
    const deleted =
      reference.kind === 'tag'
        ? await this.ctx.metadata.manifests.deleteTag(repository, reference.tag, now, outbox)
        : await this.ctx.metadata.manifests.delete(repository, reference.digest.value, now, outbox);
    if (!deleted) throw new RegistryError('MANIFEST_UNKNOWN', undefined, { reference: referenceText(reference) });
  }

  /**
   * The push hook's companion manifests (push attestations) for this push, ready for the push's
   * transaction: their blobs stored and linked first (through the upload commit path, so GC's grace
   * period covers them until the manifest row references them), each checked to be a referrer of
   * the pushed manifest. The hook may refuse the push (DENIED). Without a hook: none.
   */
  private async companions(
    repository: string,
    tags: readonly string[],
    digest: string,
    bytes: Buffer,
    manifest: ReturnType<typeof parseManifest>,
    pusher: Pusher | undefined,
    request: RequestInfo | undefined,
  ): Promise<NewManifest[]> {
    const hook = this.ctx.pushHook;
    if (!hook) return [];
    let creates = !(await this.has(repository, digest));
    for (const tag of tags) if (!creates) creates = (await this.ctx.metadata.manifests.getByTag(repository, tag))?.digest !== digest;
    const push: PendingPush = {
      repository,
      digest,
      mediaType: manifest.mediaType,
      size: bytes.length,
      tags,
      subject: manifest.subject?.digest,
      artifactType: manifest.artifactType,
      creates,
      pusher,
      request,
    };
    const out: NewManifest[] = [];
    for (const companion of await hook(push)) {
      for (const blob of companion.blobs) {
        await this.uploads.putMonolithic(repository, parseDigest(digestOf(blob)), Readable.from([blob]), blob.length);
      }
      const parsed = parseManifest(companion.content, companion.mediaType);
      if (parsed.subject?.digest !== digest) throw new Error('a companion manifest must be a referrer of the pushed manifest');
      out.push({
        repository,
        digest: digestOf(companion.content),
        mediaType: parsed.mediaType,
        content: companion.content,
        subject: digest,
        artifactType: parsed.artifactType,
        annotations: parsed.annotations,
        blobs: parsed.blobs.map((d) => d.digest),
        manifests: [],
      });
    }
    return out;
  }

  /**
   * A deletion planned earlier (a retention run's), made only if the repository still is as planned
   * (`expect`: nothing pushed to it since; for a tag, still pointing at the planned digest; for a
   * manifest, if asked, listed by no index), else nothing changes and the answer is false. Otherwise
   * exactly `delete`: the same transaction, the same `delete` webhook event naming `change.actor`.
   */
  async deleteIfUnchanged(repository: string, reference: Reference, expect: DeleteExpectation, change: ChangeContext): Promise<boolean> {
    const now = this.ctx.clock.now();
    const outbox = this.outbox(change);
    return reference.kind === 'tag'
      ? this.ctx.metadata.manifests.deleteTag(repository, reference.tag, now, outbox, expect)
      : this.ctx.metadata.manifests.delete(repository, reference.digest.value, now, outbox, expect);
  }

  /** The outbox of a change by `context`: the context's event builder, told who made the change. */
  private outbox(context: ChangeContext): ChangeOutbox | undefined {
    const build = this.ctx.changeEvents;
    if (!build) return undefined;
    return (change, now) => build(Object.assign({}, change, { actor: context.actor, request: context.request }), now);
  }
}

function acceptable(mediaType: string, accept: readonly string[]): boolean {
  if (accept.length === 0 || !mustBeAccepted.has(mediaType)) return true;
  return accept.some((type) => type === mediaType || type === '*/*' || type === 'application/*');
}

function referenceText(reference: Reference): string {
  return reference.kind === 'tag' ? reference.tag : reference.digest.value;
}

/**
 * The tags a push sets: the reference's own (a push by tag) and then the extra ones, each once, in
 * order. Every one is checked before anything is written, so an invalid one fails the whole push.
 */
function tagsOf(reference: Reference, extra: readonly string[] | undefined): string[] {
  const tags = new Set<string>(reference.kind === 'tag' ? [reference.tag] : []);
  for (const tag of extra ?? []) {
    if (!isValidTag(tag)) throw new RegistryError('MANIFEST_INVALID', 'invalid tag', { tag: tag.slice(0, 200) });
    tags.add(tag);
  }
  if (tags.size > maxTagsPerPush) {
    throw new RegistryError('TOO_MANY_TAGS', `at most ${maxTagsPerPush} tags may be pushed in one request`, { tags: tags.size });
  }
  return [...tags];
}
