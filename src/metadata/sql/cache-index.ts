/**
 * The pull-through cache's tables over Kysely (SQLite and PostgreSQL alike), one class per index of
 * `CacheMetadata`. Upserts use `ON CONFLICT … DO UPDATE` (both dialects); sweeps are claimed with
 * `claimRows` (claim.ts).
 */
import type { Selectable } from 'kysely';
import type { ClaimRequest, Lease } from '../../shared/lease.js';
import type { CachedTag, CacheMetadata, CachePullIndex, CacheRuleIndex, CacheRuleRow, CacheSweep, CacheSweepIndex, CacheTagIndex } from '../cache-store.js';
import type { CacheSweepsTable, CacheTagsTable } from '../schema.js';
import { claimRows } from './claim.js';
import { later, storableText, type SqlContext } from './context.js';

export function sqlCacheMetadata(ctx: SqlContext): CacheMetadata {
  return { rules: new SqlCacheRuleIndex(ctx), tags: new SqlCacheTagIndex(ctx), pulls: new SqlCachePullIndex(ctx), sweeps: new SqlCacheSweepIndex(ctx) };
}

const num = (value: number | string | bigint | null): number | null => (value === null ? null : Number(value));

class SqlCacheRuleIndex implements CacheRuleIndex {
  constructor(private readonly ctx: SqlContext) {}

  async create(rule: CacheRuleRow): Promise<boolean> {
    const result = await this.ctx.db
      .insertInto('cache_rules')
      .values({ id: rule.id, name: rule.name, spec: rule.spec, created_at: rule.createdAt, updated_at: rule.updatedAt })
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async update(id: string, spec: string, now: number): Promise<boolean> {
    const result = await this.ctx.db.updateTable('cache_rules').set({ spec, updated_at: now }).where('id', '=', id).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async delete(id: string): Promise<boolean> {
    return this.ctx.transaction(async (trx) => {
      const row = await trx.selectFrom('cache_rules').select('name').where('id', '=', id).executeTakeFirst();
      if (!row) return false;
      await trx.deleteFrom('cache_tags').where('rule', '=', row.name).execute();
      await trx.deleteFrom('cache_pulls').where('rule', '=', row.name).execute();
      await trx.deleteFrom('cache_sweeps').where('rule', '=', row.name).execute();
      const result = await trx.deleteFrom('cache_rules').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    });
  }

  async findByName(name: string): Promise<CacheRuleRow | undefined> {
    const row = await this.ctx.db.selectFrom('cache_rules').selectAll().where('name', '=', name).executeTakeFirst();
    return row && { id: row.id, name: row.name, spec: row.spec, createdAt: Number(row.created_at), updatedAt: Number(row.updated_at) };
  }

  async list(): Promise<CacheRuleRow[]> {
    const rows = await this.ctx.db.selectFrom('cache_rules').selectAll().orderBy('name').execute();
    return rows.map((row) => ({ id: row.id, name: row.name, spec: row.spec, createdAt: Number(row.created_at), updatedAt: Number(row.updated_at) }));
  }
}

function toTag(row: Selectable<CacheTagsTable>): CachedTag {
  return {
    repository: row.repository,
    tag: row.tag,
    rule: row.rule,
    digest: row.digest,
    checkedAt: Number(row.checked_at),
    expired: Number(row.expired) === 1,
  };
}

class SqlCacheTagIndex implements CacheTagIndex {
  constructor(private readonly ctx: SqlContext) {}

  async get(repository: string, tag: string): Promise<CachedTag | undefined> {
    const row = await this.ctx.db.selectFrom('cache_tags').selectAll().where('repository', '=', repository).where('tag', '=', tag).executeTakeFirst();
    return row && toTag(row);
  }

  async record(tag: Omit<CachedTag, 'expired'>): Promise<void> {
    await this.ctx.db
      .insertInto('cache_tags')
      .values({ repository: tag.repository, tag: tag.tag, rule: tag.rule, digest: tag.digest, checked_at: tag.checkedAt, expired: 0 })
      .onConflict((oc) => oc.columns(['repository', 'tag']).doUpdateSet({ rule: tag.rule, digest: tag.digest, checked_at: tag.checkedAt, expired: 0 }))
      .execute();
  }

  async expire(rule: string, filter: { repository?: string | undefined; tag?: string | undefined }): Promise<number> {
    let query = this.ctx.db.updateTable('cache_tags').set({ expired: 1 }).where('rule', '=', rule);
    if (filter.repository !== undefined) query = query.where('repository', '=', filter.repository);
    if (filter.tag !== undefined) query = query.where('tag', '=', filter.tag);
    const result = await query.executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  async list(rule: string, filter: { repository?: string | undefined; limit: number }): Promise<CachedTag[]> {
    let query = this.ctx.db.selectFrom('cache_tags').selectAll().where('rule', '=', rule);
    if (filter.repository !== undefined) query = query.where('repository', '=', filter.repository);
    const rows = await query.orderBy('repository').orderBy('tag').limit(filter.limit).execute();
    return rows.map(toTag);
  }

  async forgetDigest(repository: string, digest: string): Promise<void> {
    await this.ctx.db.deleteFrom('cache_tags').where('repository', '=', repository).where('digest', '=', digest).execute();
  }

  async forget(repository: string, tag: string): Promise<void> {
    await this.ctx.db.deleteFrom('cache_tags').where('repository', '=', repository).where('tag', '=', tag).execute();
  }
}

class SqlCachePullIndex implements CachePullIndex {
  constructor(private readonly ctx: SqlContext) {}

  async record(repository: string, digest: string, rule: string, now: number): Promise<void> {
    await this.ctx.db
      .insertInto('cache_pulls')
      .values({ repository, digest, rule, cached_at: now, last_pulled_at: now })
      .onConflict((oc) =>
        oc.columns(['repository', 'digest']).doUpdateSet({
          rule,
          // Never backwards: two replicas may record out of order.
          last_pulled_at: later('cache_pulls.last_pulled_at', now),
        }),
      )
      .execute();
  }

  async idle(rule: string, before: number, limit: number): Promise<Array<{ repository: string; digest: string; lastPulledAt: number }>> {
    const rows = await this.ctx.db
      .selectFrom('cache_pulls')
      .select(['repository', 'digest', 'last_pulled_at'])
      .where('rule', '=', rule)
      .where('last_pulled_at', '<', before)
      .orderBy('last_pulled_at')
      .orderBy('repository')
      .orderBy('digest')
      .limit(limit)
      .execute();
    return rows.map((row) => ({ repository: row.repository, digest: row.digest, lastPulledAt: Number(row.last_pulled_at) }));
  }

  async forget(repository: string, digest: string): Promise<void> {
    await this.ctx.db.deleteFrom('cache_pulls').where('repository', '=', repository).where('digest', '=', digest).execute();
  }
}

function toSweep(row: Selectable<CacheSweepsTable>): CacheSweep {
  return {
    rule: row.rule,
    nextAt: Number(row.next_at),
    lastRunAt: num(row.last_run_at),
    lastEvicted: num(row.last_evicted),
    lastError: row.last_error,
  };
}

class SqlCacheSweepIndex implements CacheSweepIndex {
  constructor(private readonly ctx: SqlContext) {}

  async reconcile(rules: readonly string[], firstAt: number): Promise<void> {
    for (const rule of rules) {
      await this.ctx.db
        .insertInto('cache_sweeps')
        .values({ rule, next_at: firstAt, claimed_by: null, claimed_until: null, last_run_at: null, last_evicted: null, last_error: null })
        .onConflict((oc) => oc.column('rule').doNothing())
        .execute();
    }
    let stale = this.ctx.db.deleteFrom('cache_sweeps');
    if (rules.length > 0) stale = stale.where('rule', 'not in', [...rules]);
    await stale.execute();
  }

  async claim(request: ClaimRequest): Promise<CacheSweep[]> {
    const won = await claimRows(this.ctx, request, {
      leased: 'cache_sweeps',
      candidates: (db) => db.selectFrom('cache_sweeps').select('rule').where('next_at', '<=', request.now).orderBy('next_at'),
      take: (db, { rule }) => db.updateTable('cache_sweeps').set({ claimed_by: request.owner, claimed_until: request.until }).where('rule', '=', rule),
    });
    if (won.length === 0) return [];
    const rows = await this.ctx.db
      .selectFrom('cache_sweeps')
      .selectAll()
      .where(
        'rule',
        'in',
        won.map((row) => row.rule),
      )
      .execute();
    return rows.map(toSweep);
  }

  async renew(rule: string, lease: Lease): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('cache_sweeps')
      .set({ claimed_until: lease.until })
      .where('rule', '=', rule)
      .where('claimed_by', '=', lease.owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async finish(rule: string, owner: string, outcome: { at: number; evicted: number; error: string | null; nextAt: number }): Promise<void> {
    await this.ctx.db
      .updateTable('cache_sweeps')
      .set({
        next_at: outcome.nextAt,
        last_run_at: outcome.at,
        last_evicted: outcome.evicted,
        last_error: storableText(outcome.error),
        claimed_by: null,
        claimed_until: null,
      })
      .where('rule', '=', rule)
      .where('claimed_by', '=', owner)
      .execute();
  }

  async get(rule: string): Promise<CacheSweep | undefined> {
    const row = await this.ctx.db.selectFrom('cache_sweeps').selectAll().where('rule', '=', rule).executeTakeFirst();
    return row && toSweep(row);
  }
}
