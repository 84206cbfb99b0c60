/**
 * One `RemoteRegistry` per rule, kept while the rule is unchanged, so the source's rate limit,
 * its `429 Retry-After` pause and its cached tokens are shared by the rule's reconcile and every
 * image it copies. A client is rebuilt when the rule changes, and after `maxAgeMs` so a rotated
 * `passwordFile` or `passwordEnv` is read again (an `oidc` token file is read at every token
 * request by the client itself).
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Egress } from '../net/egress.js';
import { ApiError } from '../api/errors.js';
import { RemoteRegistry, type RemoteCredentials } from '../remote/client.js';
import type { SourceCredentials, SyncRule } from './rule.js';

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
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** The rule's client; throws RegistryError INVALID_REQUEST when its credentials cannot be read. */
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
    return resolveSourceCredentials(rule.source.credentials, this.env);
  }
}

/**
 * The credentials to log in with, secret references resolved: `passwordEnv` from `env`,
 * `passwordFile` read now (one trailing newline dropped). Shared with every rule that names a
 * source registry (sync, the pull-through cache). Throws ApiError INVALID_REQUEST when a reference
 * cannot be read.
 */
export async function resolveSourceCredentials(c: SourceCredentials, env: NodeJS.ProcessEnv = process.env): Promise<RemoteCredentials> {
  if (c.kind !== 'basic') return c;
  if (c.password !== undefined) return { kind: 'basic', username: c.username, password: c.password };
  if (c.passwordEnv !== undefined) {
    const value = env[c.passwordEnv];
    if (!value) throw new ApiError('INVALID_REQUEST', `the source password variable ${c.passwordEnv} is not set in the server's environment`);
    return { kind: 'basic', username: c.username, password: value };
  }
  const file = c.passwordFile as string;
  let password: string;
  try {
    password = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
  } catch (err) {
    throw new ApiError('INVALID_REQUEST', `cannot read the source password file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!password) throw new ApiError('INVALID_REQUEST', `the source password file ${file} is empty`);
  return { kind: 'basic', username: c.username, password };
}
