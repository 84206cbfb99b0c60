/**
 * What the controller accepts in a PullBinding's spec, checked on every reconcile. Kubernetes 1.20
 * has no CEL rules on CRDs, so the CRD's OpenAPI schema catches shape and patterns at admission and
 * this module checks everything again (an older CRD, or one applied without the schema, must not
 * make the controller mint credentials it should not).
 */
import { isValidRepositoryName } from '../oci/names.js';
import { defaultServiceAccountName, type PullBinding, type PullBindingSpec } from './types.js';

/** At most this many scopes per binding (a pull secret for dozens of repositories wants a second binding). */
export const maxScopes = 32;

/** `repository:<name>:pull`, the only scope a pull binding may ask for. */
const scopePattern = /^repository:([^:]+):pull$/;
/** RFC 1123 subdomain, Kubernetes' rule for service account and Secret names. */
const subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const hostPort = /^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(:(\d{1,5}))?$/;

export interface ValidBinding {
  /** Lower-cased `host[:port]`. */
  server: string;
  /** Sorted, de-duplicated. */
  scopes: string[];
  /** Repository names of the scopes, in the same order. */
  repositories: string[];
  tokenServiceAccount: string;
  targetServiceAccount: string;
  clientId: string | undefined;
}

export class SpecError extends Error {
  override name = 'SpecError';
}

export function isServiceAccountName(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 253 && subdomain.test(value);
}

function serviceAccountName(value: unknown, field: string): string {
  if (!isServiceAccountName(value)) {
    throw new SpecError(`${field} must be a service account name (lowercase RFC 1123 subdomain), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** `host[:port]`, lower-cased; refuses schemes, paths and ports out of range. */
export function normalizeServer(value: unknown): string {
  if (typeof value !== 'string' || value.length > 255) throw new SpecError('spec.registry.server must be host[:port]');
  const match = hostPort.exec(value);
  const port = match?.[6];
  if (!match || (port !== undefined && (Number(port) < 1 || Number(port) > 65535))) {
    throw new SpecError(`spec.registry.server must be host[:port] without a scheme or path, got ${JSON.stringify(value.slice(0, 100))}`);
  }
  return value.toLowerCase();
}

/** Checks a spec and returns it normalised; throws SpecError naming the first problem. */
export function validateSpec(spec: PullBindingSpec | undefined): ValidBinding {
  if (!spec || typeof spec !== 'object') throw new SpecError('spec is required');
  const registry = spec.registry as Partial<PullBindingSpec['registry']> | undefined;
  const server = normalizeServer(registry?.server);
  const rawScopes: unknown = registry?.scopes;
  if (!Array.isArray(rawScopes) || rawScopes.length === 0) {
    throw new SpecError('spec.registry.scopes is required: one or more repository:<name>:pull');
  }
  if (rawScopes.length > maxScopes) throw new SpecError(`spec.registry.scopes has ${rawScopes.length} entries; at most ${maxScopes}`);
  const repositories = new Set<string>();
  for (const scope of rawScopes) {
    const match = typeof scope === 'string' ? scopePattern.exec(scope) : null;
    const name = match?.[1];
    if (name === undefined) {
      throw new SpecError(`spec.registry.scopes: ${JSON.stringify(scope)} is not repository:<name>:pull (only pull, one repository per scope)`);
    }
    if (!isValidRepositoryName(name)) {
      throw new SpecError(`spec.registry.scopes: ${JSON.stringify(name)} is not a repository name (no wildcards: name each repository)`);
    }
    repositories.add(name);
  }
  const sorted = [...repositories].sort();
  const auth = spec.auth as Partial<PullBindingSpec['auth']> | undefined;
  const tokenServiceAccount = serviceAccountName(auth?.workloadIdentity?.serviceAccountRef, 'spec.auth.workloadIdentity.serviceAccountRef');
  const clientId: unknown = auth?.clientId;
  if (clientId !== undefined && (typeof clientId !== 'string' || clientId.length === 0 || clientId.length > 256 || /\s/.test(clientId))) {
    throw new SpecError('spec.auth.clientId must be a non-empty client id without spaces');
  }
  const targetServiceAccount =
    spec.serviceAccountName === undefined ? defaultServiceAccountName : serviceAccountName(spec.serviceAccountName, 'spec.serviceAccountName');
  return {
    server,
    scopes: sorted.map((name) => `repository:${name}:pull`),
    repositories: sorted,
    tokenServiceAccount,
    targetServiceAccount,
    clientId: clientId as string | undefined,
  };
}

/**
 * The registry allow-list: exact `host[:port]` entries, or `*.domain` for any host under a domain
 * (with any port). An empty list allows nothing: the controller must be told which registries it
 * may send service-account tokens to.
 */
export function serverAllowed(server: string, allowList: readonly string[]): boolean {
  const host = server.replace(/:\d+$/, '');
  return allowList.some((entry) => {
    const allowed = entry.toLowerCase();
    if (allowed.startsWith('*.')) return host.endsWith(allowed.slice(1)) && host.length > allowed.length - 1;
    return allowed === server;
  });
}

/** Where the Secret for a binding lives: `<binding>-berth-pull`, shortened with a hash when too long. */
export function secretNameFor(binding: Pick<PullBinding, 'metadata'>, hash: (text: string) => string): string {
  const name = binding.metadata.name ?? '';
  const candidate = `${name}-berth-pull`;
  if (candidate.length <= 253) return candidate;
  return `${name.slice(0, 253 - 11 - 17).replace(/[-.]+$/, '')}-${hash(name).slice(0, 16)}-berth-pull`;
}
