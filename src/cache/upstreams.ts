/**
 * One registry client (`remote/`) per cache rule, kept while the rule is unchanged, so the
 * upstream's rate limit, its tokens and a `Retry-After` pause are shared by every pull through the
 * rule; rebuilt after `maxAgeMs` so a rotated `passwordFile` or `passwordEnv` is read again.
 *
 * Requests go through the egress policy like every outbound request. They are short on retries
 * and never wait out a `Retry-After` (a client is waiting): the upstream's wait is remembered per
 * rule (`blockedUntil`) and, until it passes, the cache serves what it has without asking.
 */
import type { Logger } from 'pino';
import { ApiError, isApiError } from '../api/errors.js';
import type { Egress } from '../net/egress.js';
import { RemoteRegistry } from '../remote/client.js';
import type { Clock } from '../shared/clock.js';
import type { SecretReader } from '../sync/secret-refs.js';
import { resolveSourceCredentials } from '../sync/sources.js';
import type { CacheRule } from './rule.js';

export interface UpstreamSettings {
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  attempts: number;
}

/** How an upstream request ended, for metrics and the stale decision (a closed set). */
export type UpstreamOutcome = 'ok' | 'not_found' | 'rate_limited' | 'unreachable' | 'denied' | 'invalid' | 'egress' | 'credentials';

export interface UpstreamState {
  blockedUntil: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
}

const maxAgeMs = 10 * 60 * 1000;

export class Upstreams {
  private readonly clients = new Map<string, { updatedAt: number | null; builtAt: number; spec: string; remote: RemoteRegistry }>();
  private readonly states = new Map<string, UpstreamState>();

  constructor(
    private readonly egress: Egress,
    private readonly settings: UpstreamSettings,
    private readonly clock: Clock,
    private readonly logger: Logger,
    /** Secret references of rules made through the API: confined to `secrets.fileDir` / `secrets.envPrefix`. */
    private readonly apiSecrets: SecretReader,
    /** Secret references of rules in the configuration file: the operator's, not confined. */
    private readonly operatorSecrets: SecretReader,
  ) {}

  /**
   * The rule's client. Throws the remembered wait (UPSTREAM_UNREACHABLE with `retryAfterMs`) while
   * the upstream asked not to be contacted, and INVALID_REQUEST when its credentials cannot be read.
   */
  async client(rule: CacheRule): Promise<RemoteRegistry> {
    const blocked = this.states.get(rule.name)?.blockedUntil ?? null;
    const now = this.clock.now();
    if (blocked !== null && blocked > now) {
      throw new ApiError('UPSTREAM_UNREACHABLE', `${rule.upstreamHost} asked to wait until ${new Date(blocked).toISOString()} (Retry-After)`, {
        retryAfterMs: blocked - now,
      });
    }
    const spec = JSON.stringify(rule.spec);
    const cached = this.clients.get(rule.name);
    if (cached && cached.spec === spec && Date.now() - cached.builtAt < maxAgeMs) return cached.remote;
    const remote = new RemoteRegistry({
      baseUrl: rule.upstreamUrl,
      credentials: await resolveSourceCredentials(rule.credentials, rule.managedBy === 'config' ? this.operatorSecrets : this.apiSecrets),
      egress: this.egress,
      limits: rule.limits,
      retries: { attempts: this.settings.attempts, maxRetryAfterMs: 0, maxDelayMs: 1000 },
      timeouts: { headersMs: this.settings.headersTimeoutMs, bodyMs: this.settings.bodyTimeoutMs },
      userAgent: 'berth-cache',
      logger: this.logger,
    });
    this.clients.set(rule.name, { updatedAt: rule.updatedAt, builtAt: Date.now(), spec, remote });
    return remote;
  }

  /** Records how a request to the rule's upstream ended; a `Retry-After` blocks the upstream until it passes. */
  note(rule: CacheRule, err: unknown): UpstreamOutcome {
    const outcome = classify(err);
    if (outcome === 'ok' || outcome === 'not_found') return outcome;
    const now = this.clock.now();
    const state = this.states.get(rule.name) ?? { blockedUntil: null, lastError: null, lastErrorAt: null };
    const wait = retryAfterOf(err);
    if (wait !== undefined && wait > 0) state.blockedUntil = Math.max(state.blockedUntil ?? 0, now + wait);
    state.lastError = (err as Error).message.slice(0, 500);
    state.lastErrorAt = now;
    this.states.set(rule.name, state);
    return outcome;
  }

  state(rule: string): UpstreamState {
    const state = this.states.get(rule);
    if (!state) return { blockedUntil: null, lastError: null, lastErrorAt: null };
    return Object.assign({}, state, { blockedUntil: state.blockedUntil !== null && state.blockedUntil > this.clock.now() ? state.blockedUntil : null });
  }

  forget(rule: string): void {
    this.clients.delete(rule);
    this.states.delete(rule);
  }
}

/** How long the upstream asked to wait, when that is why a request failed. */
export function retryAfterOf(err: unknown): number | undefined {
  if (!isApiError(err) || err.code !== 'UPSTREAM_UNREACHABLE') return undefined;
  const wait = (err.detail as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
  return typeof wait === 'number' ? wait : undefined;
}

export function classify(err: unknown): UpstreamOutcome {
  if (err === undefined) return 'ok';
  if (!isApiError(err)) return 'unreachable';
  switch (err.code) {
    case 'UPSTREAM_NOT_FOUND':
      return 'not_found';
    case 'UPSTREAM_UNREACHABLE':
      return retryAfterOf(err) !== undefined ? 'rate_limited' : 'unreachable';
    case 'UPSTREAM_DENIED':
      return 'denied';
    case 'UPSTREAM_INVALID':
      return 'invalid';
    case 'EGRESS_REFUSED':
      return 'egress';
    case 'INVALID_REQUEST':
      return 'credentials';
    default:
      return 'unreachable';
  }
}
