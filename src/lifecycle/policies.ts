/**
 * Lifecycle policies as data: validated once when saved (the wire schema of `api/lifecycle.ts`, then
 * what needs the domain: every tag filter compiles in the sync filters' engine), stored in canonical
 * form (durations in ms, sizes in bytes, defaults filled in), and read back for enforcement through a
 * short cache, so the push path costs one small query every `policyCacheMs` at most.
 */
import type { Logger } from 'pino';
import type { z } from 'zod';
import { ApiError } from '../api/errors.js';
import { policyInputs, type ImmutabilityRule, type PolicyKind, type PolicyView, type QuotaRule, type RetentionRule } from '../api/lifecycle.js';
import { specificIssue } from '../api/validation.js';
import type { PolicyIndex, PolicyRecord } from '../metadata/lifecycle-store.js';
import type { Clock } from '../shared/clock.js';
import { selectionProblems } from './selectors.js';

export interface StoredPolicy<Rule> {
  id: string;
  kind: PolicyKind;
  rule: Rule;
  createdAt: number;
  updatedAt: number;
}

export interface Rules {
  retention: StoredPolicy<RetentionRule>[];
  immutability: StoredPolicy<ImmutabilityRule>[];
  quotas: StoredPolicy<QuotaRule>[];
}

type RuleOf<K extends PolicyKind> = K extends 'retention' ? RetentionRule : K extends 'immutability' ? ImmutabilityRule : QuotaRule;

/** Most policies of one kind (each is checked on the paths it applies to). */
export const maxPoliciesPerKind = 1000;

/**
 * Validates a rule as an API body or a file entry gives it (the name from the path wins; a body that
 * names another is refused) and returns it in canonical form. INVALID_REQUEST names every problem.
 */
export function parseRule<K extends PolicyKind>(kind: K, name: string, input: unknown): RuleOf<K> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new ApiError('INVALID_REQUEST', 'a rule is a JSON object');
  const body = input as Record<string, unknown>;
  if (body['name'] !== undefined && body['name'] !== name) {
    throw new ApiError('INVALID_REQUEST', `the body names the rule ${JSON.stringify(String(body['name']).slice(0, 64))} but the path names ${name}`);
  }
  const schema: z.ZodTypeAny = policyInputs[kind];
  const parsed = schema.safeParse({ ...body, name });
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 20)
      .map(specificIssue)
      .map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new ApiError('INVALID_REQUEST', issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '), { issues });
  }
  const rule = parsed.data as RuleOf<K>;
  const problems = selectionProblems(rule.repositories, 'tags' in rule ? rule.tags : { include: [], exclude: [] });
  if (problems.length > 0) throw new ApiError('INVALID_REQUEST', problems.slice(0, 20).join('; '), { issues: problems.slice(0, 20) });
  return rule;
}

export function policyView(policy: StoredPolicy<RetentionRule | ImmutabilityRule | QuotaRule>, nextRunAt?: number | null): PolicyView {
  return {
    kind: policy.kind,
    name: policy.rule.name,
    rule: policy.rule,
    createdAt: new Date(policy.createdAt).toISOString(),
    updatedAt: new Date(policy.updatedAt).toISOString(),
    ...(nextRunAt !== undefined ? { nextRunAt: nextRunAt === null ? null : new Date(nextRunAt).toISOString() } : {}),
  };
}

export class PolicyStore {
  private cached: { rules: Rules; version: string; checkedAt: number } | undefined;
  private loading: Promise<Rules> | undefined;

  constructor(
    private readonly store: PolicyIndex,
    private readonly clock: Clock,
    private readonly cacheMs: number,
    private readonly logger: Logger,
  ) {}

  /** Every policy, parsed; from the cache when it was checked within `cacheMs` (see the module comment). */
  async rules(): Promise<Rules> {
    const now = this.clock.now();
    if (this.cached && now - this.cached.checkedAt < this.cacheMs) return this.cached.rules;
    this.loading ??= this.reload().finally(() => (this.loading = undefined));
    return this.loading;
  }

  /** Forgets the cache (after a change made here). */
  invalidate(): void {
    this.cached = undefined;
  }

  /** Every policy, read now. */
  async fresh(): Promise<Rules> {
    this.invalidate();
    return this.rules();
  }

  async get<K extends PolicyKind>(kind: K, name: string): Promise<StoredPolicy<RuleOf<K>> | undefined> {
    const record = await this.store.get(kind, name);
    return record && (this.parse(record) as StoredPolicy<RuleOf<K>> | undefined);
  }

  /** Creates or replaces a policy (the rule already parsed by `parseRule`). */
  async put<K extends PolicyKind>(
    kind: K,
    rule: RuleOf<K>,
  ): Promise<{ policy: StoredPolicy<RuleOf<K>>; created: boolean; previous: StoredPolicy<RuleOf<K>> | undefined }> {
    const previous = await this.get(kind, rule.name);
    if (!previous && (await this.store.list(kind)).length >= maxPoliciesPerKind) {
      throw new ApiError('INVALID_REQUEST', `at most ${maxPoliciesPerKind} ${kind} policies: merge some first`);
    }
    const { record, created } = await this.store.put(kind, rule.name, JSON.stringify(rule), this.clock.now());
    this.invalidate();
    return { policy: { ...fromRecord(record), kind, rule }, created, previous };
  }

  async delete<K extends PolicyKind>(kind: K, name: string): Promise<StoredPolicy<RuleOf<K>> | undefined> {
    const record = await this.store.delete(kind, name);
    this.invalidate();
    return record && (this.parse(record) as StoredPolicy<RuleOf<K>> | undefined);
  }

  private async reload(): Promise<Rules> {
    const now = this.clock.now();
    const version = await this.store.version();
    if (this.cached && this.cached.version === version) {
      this.cached.checkedAt = now;
      return this.cached.rules;
    }
    const rules: Rules = { retention: [], immutability: [], quotas: [] };
    for (const record of await this.store.list()) {
      const policy = this.parse(record);
      if (!policy) continue;
      if (policy.kind === 'retention') rules.retention.push(policy as StoredPolicy<RetentionRule>);
      else if (policy.kind === 'immutability') rules.immutability.push(policy as StoredPolicy<ImmutabilityRule>);
      else rules.quotas.push(policy as StoredPolicy<QuotaRule>);
    }
    this.cached = { rules, version, checkedAt: now };
    return rules;
  }

  /** A stored record parsed; one that no longer parses (written by a newer Berth) is logged and skipped. */
  private parse(record: PolicyRecord): StoredPolicy<RetentionRule | ImmutabilityRule | QuotaRule> | undefined {
    const kind = record.kind as PolicyKind;
    const schema: z.ZodTypeAny | undefined = (policyInputs as Record<string, z.ZodTypeAny>)[kind];
    const parsed = schema?.safeParse(JSON.parse(record.spec));
    if (!parsed?.success) {
      this.logger.warn({ kind: record.kind, policy: record.name }, 'a stored lifecycle policy does not parse; it is ignored');
      return undefined;
    }
    return { ...fromRecord(record), kind, rule: parsed.data as RetentionRule | ImmutabilityRule | QuotaRule };
  }
}

function fromRecord(record: PolicyRecord): { id: string; createdAt: number; updatedAt: number } {
  return { id: record.id, createdAt: record.createdAt, updatedAt: record.updatedAt };
}
