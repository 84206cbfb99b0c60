/**
 * The rules in force: those of the configuration file (fixed for the process's life, read-only
 * through the API) and those managed through /api/v1 (rows, re-read every `refreshMs` so every
 * replica follows a change; at once on the replica that made it). Every pull through the registry
 * asks "does a rule own this repository?", so the answer comes from memory.
 *
 * Names, prefixes and mirror hosts are unique across both kinds (`conflict`); a change that would
 * break that is refused. Should the stored rules still conflict (two replicas creating at once, or
 * a configuration file naming what an API rule already uses), configuration rules win, then older
 * API rules; a rule left out is logged.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { maxCacheRules, type CacheRuleInput, type CacheRuleUpdate } from '../api/cache.js';
import { ApiError } from '../api/errors.js';
import type { CacheRuleIndex } from '../metadata/cache-store.js';
import type { Clock } from '../shared/clock.js';
import {
  applyUpdate,
  conflict,
  conflictWith,
  effectiveRule,
  parseSpec,
  specFromInput,
  specJson,
  type CacheRule,
  type CacheRuleSpec,
  type RuleDefaults,
} from './rule.js';

export interface RuleSetDependencies {
  store: CacheRuleIndex;
  /** The configuration file's rules (already validated by the config schema). */
  configured: readonly CacheRuleInput[];
  defaults: RuleDefaults;
  refreshMs: number;
  clock: Clock;
  logger: Logger;
}

export class RuleSet {
  private readonly configured: CacheRule[];
  private snapshot: { at: number; rules: CacheRule[] } | undefined;
  private loading: Promise<CacheRule[]> | undefined;

  constructor(private readonly deps: RuleSetDependencies) {
    this.configured = deps.configured.map((input) =>
      effectiveRule(input.name, specFromInput(input), { managedBy: 'config', id: null, createdAt: null, updatedAt: null }, deps.defaults),
    );
    const problem = conflict(this.configured);
    if (problem) throw new Error(`cache.rules: ${problem}`);
  }

  /** Every rule in force (configuration first, then API rules by name). */
  async all(): Promise<CacheRule[]> {
    const snapshot = this.snapshot;
    if (snapshot && Date.now() - snapshot.at < this.deps.refreshMs) return snapshot.rules;
    this.loading ??= this.load().finally(() => (this.loading = undefined));
    return this.loading;
  }

  /** Re-read at the next call (after a change made here). */
  invalidate(): void {
    this.snapshot = undefined;
  }

  /** The rule by name; 404 CACHE_RULE_UNKNOWN otherwise. */
  async named(name: string): Promise<CacheRule> {
    const rule = (await this.all()).find((r) => r.name === name);
    if (!rule) throw new ApiError('CACHE_RULE_UNKNOWN', `no cache rule named ${JSON.stringify(name.slice(0, 100))}`);
    return rule;
  }

  /** Creates an API rule; `validate` (the upstream's reachability) runs after the local checks, before anything is written. */
  async create(input: CacheRuleInput, validate: (rule: CacheRule) => Promise<void>): Promise<CacheRule> {
    this.invalidate();
    const rules = await this.all();
    if (rules.length >= maxCacheRules) throw new ApiError('INVALID_REQUEST', `at most ${maxCacheRules} cache rules may exist`);
    const now = this.deps.clock.now();
    const id = randomUUID();
    const spec = specFromInput(input);
    const rule = effectiveRule(input.name, spec, { managedBy: 'api', id, createdAt: now, updatedAt: now }, this.deps.defaults);
    this.assertFits(
      rule,
      rules.filter((r) => r.name !== input.name),
      rules.some((r) => r.name === input.name),
    );
    await validate(rule);
    if (!(await this.deps.store.create({ id, name: input.name, spec: specJson(spec), createdAt: now, updatedAt: now }))) {
      throw new ApiError('CACHE_RULE_EXISTS', `a cache rule named ${input.name} already exists`);
    }
    this.invalidate();
    return rule;
  }

  /** Applies a PATCH (`validate` as for `create`); returns the rule before and after. */
  async update(
    name: string,
    update: CacheRuleUpdate,
    validate: (before: CacheRule, after: CacheRule) => Promise<void>,
  ): Promise<{ before: CacheRule; after: CacheRule }> {
    this.invalidate();
    const before = await this.named(name);
    this.assertManaged(before);
    const now = this.deps.clock.now();
    const spec: CacheRuleSpec = applyUpdate(before.spec, update);
    const after = effectiveRule(name, spec, { managedBy: 'api', id: before.id, createdAt: before.createdAt, updatedAt: now }, this.deps.defaults);
    this.assertFits(
      after,
      (await this.all()).filter((r) => r.name !== name),
      false,
    );
    await validate(before, after);
    if (!(await this.deps.store.update(before.id as string, specJson(spec), now))) {
      throw new ApiError('CACHE_RULE_UNKNOWN', `no cache rule named ${name}`);
    }
    this.invalidate();
    return { before, after };
  }

  async delete(name: string): Promise<CacheRule> {
    this.invalidate();
    const rule = await this.named(name);
    this.assertManaged(rule);
    if (!(await this.deps.store.delete(rule.id as string))) throw new ApiError('CACHE_RULE_UNKNOWN', `no cache rule named ${name}`);
    this.invalidate();
    return rule;
  }

  private assertManaged(rule: CacheRule): void {
    if (rule.managedBy === 'config') {
      throw new ApiError('CACHE_RULE_MANAGED', `cache rule ${rule.name} comes from the configuration file (cache.rules): change it there`);
    }
  }

  private assertFits(rule: CacheRule, others: readonly CacheRule[], nameTaken: boolean): void {
    if (nameTaken) throw new ApiError('CACHE_RULE_EXISTS', `a cache rule named ${rule.name} already exists`);
    const problem = conflictWith(rule, others);
    if (problem) throw new ApiError('CACHE_RULE_EXISTS', problem);
  }

  private async load(): Promise<CacheRule[]> {
    const rows = await this.deps.store.list();
    const rules = [...this.configured];
    for (const row of [...rows].sort((a, b) => a.createdAt - b.createdAt || a.name.localeCompare(b.name))) {
      let rule: CacheRule;
      try {
        rule = effectiveRule(
          row.name,
          parseSpec(row.spec),
          { managedBy: 'api', id: row.id, createdAt: row.createdAt, updatedAt: row.updatedAt },
          this.deps.defaults,
        );
      } catch (err) {
        this.deps.logger.error({ rule: row.name, err }, 'cache rule unreadable; ignored');
        continue;
      }
      const problem = conflictWith(rule, rules);
      if (problem) {
        this.deps.logger.error({ rule: row.name, problem }, 'cache rule conflicts with another; ignored until fixed');
        continue;
      }
      rules.push(rule);
    }
    rules.sort((a, b) => (a.managedBy === b.managedBy ? a.name.localeCompare(b.name) : a.managedBy === 'config' ? -1 : 1));
    this.snapshot = { at: Date.now(), rules };
    return rules;
  }
}
