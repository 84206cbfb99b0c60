/**
 * One `RemoteRegistry` per rule, kept while the rule is unchanged, so the source's rate limit,
 * its `429 Retry-After` pause and its cached tokens are shared by the rule's reconcile and every
 * image it copies. A client is rebuilt when the rule changes, and after `maxAgeMs` so a rotated
 * `passwordFile` or `passwordEnv` is read again (an `oidc` token file is read at every token
 * request by the client itself).
 */
import type { Logger } from 'pino';
import type { Egress } from '../net/egress.js';
import { ApiError } from '../api/errors.js';
import { RemoteRegistry, type RemoteCredentials } from '../remote/client.js';
import type { SourceCredentials, SyncRule } from './rule.js';
import type { SecretReader, SecretReferences } from './secret-refs.js';

export interface SourceLimits {
  requestsPerSecond: number;
  concurrency: number;
}

const maxAgeMs = 10 * 60 * 1000;

export class SourcePool {
  private readonly clients = new Map<string, { updatedAt: number; builtAt: number; remote: RemoteRegistry }>();

  constructor(
    private readonly egress: Egress,
    private readonly defaults: SourceLimits,
    /** A source's `Retry-After` up to this long is waited out within the request (longer: the request fails). */
    private readonly maxRetryAfterMs: number,
    private readonly logger: Logger,
    /** Where the rule's file and variable references may point (`secret-refs.ts`). */
    private readonly secrets: SecretReferences,
  ) {}

  /** The rule's client; throws ApiError INVALID_REQUEST when its credentials cannot be read or reach out of bounds. */
  async get(rule: SyncRule): Promise<RemoteRegistry> {
    const cached = this.clients.get(rule.id);
    if (cached && cached.updatedAt === rule.updatedAt && Date.now() - cached.builtAt < maxAgeMs) return cached.remote;
    const remote = new RemoteRegistry({
      baseUrl: rule.source.url,
      credentials: await this.credentials(rule),
      egress: this.egress,
      limits: this.limits(rule),
      retries: { maxRetryAfterMs: this.maxRetryAfterMs },
      userAgent: 'berth-sync',
      logger: this.logger,
    });
    this.clients.set(rule.id, { updatedAt: rule.updatedAt, builtAt: Date.now(), remote });
    return remote;
  }

  /** The rule's effective per-source limits. */
  limits(rule: Pick<SyncRule, 'limits'>): SourceLimits {
    return {
      requestsPerSecond: rule.limits.requestsPerSecond ?? this.defaults.requestsPerSecond,
      concurrency: rule.limits.concurrency ?? this.defaults.concurrency,
    };
  }

  forget(ruleId: string): void {
    this.clients.delete(ruleId);
  }

  private credentials(rule: SyncRule): Promise<RemoteCredentials> {
    return resolveSourceCredentials(rule.source.credentials, this.secrets);
  }
}

/**
 * The credentials to log in with, secret references resolved through `secrets` (confined to
 * `secrets.fileDir` and `secrets.envPrefix`, checked again at every use since a rule may predate
 * the configuration): a password file loses one trailing newline; an `oidc` token file is read
 * (through the same confinement) at every token request. Shared by every rule that names a source
 * registry (sync, the pull-through cache).
 */
export async function resolveSourceCredentials(c: SourceCredentials, secrets: SecretReader): Promise<RemoteCredentials> {
  if (c.kind === 'anonymous') return c;
  if (c.kind === 'oidc') {
    secrets.check(c);
    return {
      kind: 'oidc',
      clientId: c.clientId,
      tokenFile: c.tokenFile,
      readToken: () => secrets.readFile('source.credentials.tokenFile', c.tokenFile),
    };
  }
  if (c.password !== undefined) return { kind: 'basic', username: c.username, password: c.password };
  if (c.passwordEnv !== undefined) {
    return { kind: 'basic', username: c.username, password: secrets.readEnv('source.credentials.passwordEnv', c.passwordEnv) };
  }
  const file = c.passwordFile as string;
  const password = (await secrets.readFile('source.credentials.passwordFile', file)).replace(/\r?\n$/, '');
  if (!password) throw new ApiError('INVALID_REQUEST', `the source password file ${file} is empty`);
  return { kind: 'basic', username: c.username, password };
}
