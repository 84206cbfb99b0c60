/**
 * `berth history <repo>[:<tag>|@<digest>]`: who pushed what to a repository, newest first, and for
 * a push made with a federated login the workload that made it (for GitHub Actions
 * `owner/repo@sha`, the workflow and the run). Reads `GET /api/v1/repositories/<repo>/history`,
 * which needs pull on the repository: the saved `berth login` (or --username + --password-stdin)
 * is asked for `repository:<repo>:pull`; with nothing saved the request goes without a token,
 * which works for repositories open to anonymous pull.
 */
import { urls } from '../api/urls.js';
import { tryParseDigest } from '../oci/digest.js';
import { isValidRepositoryName, isValidTag } from '../oci/names.js';
import { AdminError, apiRequest, connectRegistry, type HistoryView, type PushView } from './admin-client.js';
import { print, printJson, table, type CommandOptions } from './admin.js';

export interface HistoryOptions extends CommandOptions {
  limit?: number | undefined;
}

export interface ImageReference {
  /** The registry host, when the reference starts with one (`127.0.0.1:5000/team/app`). */
  registry: string | undefined;
  repository: string;
  tag: string | undefined;
  digest: string | undefined;
}

export async function history(reference: string, options: HistoryOptions): Promise<void> {
  const ref = parseImageReference(reference);
  if (ref.registry !== undefined && options.registry !== undefined && ref.registry !== options.registry) {
    throw new AdminError(`${reference} names the registry ${ref.registry} but --registry is ${options.registry}: give one`);
  }
  const session = await connectRegistry({ ...options, registry: options.registry ?? ref.registry }, [`repository:${ref.repository}:pull`], { anonymous: true });
  const res = await apiRequest(session, 'GET', urls.api.history(ref.repository, { tag: ref.tag, digest: ref.digest, limit: options.limit }));
  const parsed = res.body;
  if (res.status < 200 || res.status >= 300) {
    const first = (parsed as { errors?: Array<{ code?: string; message?: string }> } | undefined)?.errors?.[0];
    const where = `${ref.repository} on ${session.registry}`;
    if (res.status === 401 && session.accessToken === undefined) {
      throw new AdminError(`${where} needs a login: run \`berth login ${session.registry}\`, or pass --username and --password-stdin`);
    }
    if (res.status === 401)
      throw new AdminError(`${session.registry} refused the token (${first?.message ?? 'HTTP 401'}): run \`berth login ${session.registry}\``);
    if (res.status === 403) throw new AdminError(`${session.actor.name} may not pull ${where}: ask an owner for pull on it`);
    if (res.status === 404 && first?.code === 'NAME_UNKNOWN') throw new AdminError(`no repository ${where} (nothing was ever pushed to it)`);
    throw new AdminError(`${first?.message ?? `HTTP ${res.status}`} (HTTP ${res.status}${first?.code ? ` ${first.code}` : ''})`);
  }
  const body = parsed as HistoryView;
  if (options.json) return printJson(body);
  if (body.pushes.length === 0)
    return print(`no pushes recorded for ${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`);
  print(formatHistory(body.pushes, body.attestations));
}

/**
 * The table: one push a line, newest first. ATTESTED is the digest's push-attestation status as the
 * server verified it (`verified`, `invalid`, `none`; docs/attestations.md).
 */
export function formatHistory(pushes: readonly PushView[], attestations: HistoryView['attestations'] = {}): string {
  return table([
    ['WHEN', 'TAG', 'DIGEST', 'ATTESTED', 'PUSHED BY', 'SOURCE'],
    ...pushes.map((p) => [
      p.at.replace(/\.\d+Z$/, 'Z'),
      p.tag ?? '-',
      shortDigest(p.digest),
      attestations[p.digest]?.status ?? '-',
      p.principal?.name ?? '-',
      source(p.provenance),
    ]),
  ]);
}

function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return `${digest.slice(0, colon + 1)}${digest.slice(colon + 1, colon + 13)}`;
}

/**
 * Where a federated push came from, in the words of its platform: GitHub Actions
 * `owner/repo@sha workflow NAME run ID`, GitLab `group/project@sha pipeline ID`, Kubernetes
 * `pod NAMESPACE/POD (service account SA)`, an import `import JOB from SOURCE`, a sync
 * `sync RULE from SOURCE`, a pull-through cache `proxy:RULE from UPSTREAM/REPOSITORY@DIGEST`, any other issuer its `sub`. `-` for a push with a password or refresh token.
 */
export function source(provenance: Record<string, unknown> | null): string {
  if (!provenance) return '-';
  const text = (key: string): string | undefined => {
    const value = provenance[key];
    return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
  };
  const sha = text('sha')?.slice(0, 7);
  if (text('repository') !== undefined && text('run_id') !== undefined) {
    const parts = [`${text('repository')}${sha ? `@${sha}` : ''}`];
    if (text('workflow') !== undefined) parts.push(`workflow ${text('workflow')}`);
    parts.push(`run ${text('run_id')}${text('run_attempt') !== undefined && text('run_attempt') !== '1' ? ` (attempt ${text('run_attempt')})` : ''}`);
    return parts.join(' ');
  }
  if (text('project_path') !== undefined) {
    return `${text('project_path')}${sha ? `@${sha}` : ''}${text('pipeline_id') !== undefined ? ` pipeline ${text('pipeline_id')}` : ''}`;
  }
  const copied = copiedFrom(provenance);
  if (copied) return copied;
  const k8s = provenance['kubernetes.io'] as { namespace?: unknown; pod?: { name?: unknown }; serviceaccount?: { name?: unknown } } | undefined;
  if (k8s && typeof k8s === 'object' && typeof k8s.namespace === 'string') {
    const pod = typeof k8s.pod?.name === 'string' ? `pod ${k8s.namespace}/${k8s.pod.name}` : `namespace ${k8s.namespace}`;
    return typeof k8s.serviceaccount?.name === 'string' ? `${pod} (service account ${k8s.serviceaccount.name})` : pod;
  }
  return text('sub') ?? '-';
}

/** Pushes made by `berth import`, sync rules and the pull-through cache record what they copied from. */
function copiedFrom(provenance: Record<string, unknown>): string | undefined {
  const field = (record: unknown, key: string): string | undefined => {
    const value = typeof record === 'object' && record !== null ? (record as Record<string, unknown>)[key] : undefined;
    return typeof value === 'string' ? value : undefined;
  };
  const imported = provenance['import'];
  if (field(imported, 'job') !== undefined) return `import ${field(imported, 'job')} from ${field(imported, 'source') ?? '?'}`;
  const synced = provenance['sync'];
  if (field(synced, 'rule') !== undefined) {
    const from = [field(synced, 'source'), field(synced, 'repository')].filter((p) => p !== undefined).join(' ');
    return `sync ${field(synced, 'rule')}${from ? ` from ${from}` : ''}`;
  }
  const proxied = provenance['proxy'];
  if (field(proxied, 'rule') !== undefined) {
    const upstream = (field(proxied, 'upstream') ?? '').replace(/^https?:\/\//, '');
    const digest = field(proxied, 'digest');
    return `proxy:${field(proxied, 'rule')} from ${upstream}/${field(proxied, 'repository') ?? '?'}${digest ? `@${digest}` : ''}`;
  }
  return undefined;
}

/**
 * `[host[:port]/]repo[:tag][@digest]`, read as docker reads it: a first path component with a
 * `.` or a `:`, or `localhost`, is the registry.
 */
export function parseImageReference(text: string): ImageReference {
  let rest = text.trim();
  let registry: string | undefined;
  const slash = rest.indexOf('/');
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!tryParseDigest(digest)) throw new AdminError(`invalid digest ${JSON.stringify(digest)} in ${JSON.stringify(text)}: expected sha256:<64 hex digits>`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw new AdminError(`invalid tag ${JSON.stringify(tag)} in ${JSON.stringify(text)}`);
  }
  if (!isValidRepositoryName(rest)) {
    throw new AdminError(`invalid repository name ${JSON.stringify(rest)}: expected lowercase path components like team/app, optionally :tag or @sha256:…`);
  }
  return { registry, repository: rest, tag, digest };
}
