import type { Selectable } from 'kysely';
import type { CredentialIndex, CredentialRecord, GrantIndex, GrantRecord, PrincipalIndex, PrincipalRecord } from '../auth-store.js';
import type { PrincipalKind, PrincipalsTable } from '../schema.js';
import type { SqlContext } from './context.js';

function toPrincipal(row: Selectable<PrincipalsTable>): PrincipalRecord {
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    description: row.description ?? undefined,
    disabled: Number(row.disabled) !== 0,
    expiresAt: row.expires_at === null ? undefined : Number(row.expires_at),
    createdAt: Number(row.created_at),
  };
}

export class SqlPrincipalIndex implements PrincipalIndex {
  constructor(private readonly ctx: SqlContext) {}

  async create(p: PrincipalRecord): Promise<boolean> {
    const result = await this.ctx.db
      .insertInto('principals')
      .values({
        id: p.id,
        kind: p.kind,
        name: p.name,
        description: p.description ?? null,
        disabled: p.disabled ? 1 : 0,
        expires_at: p.expiresAt ?? null,
        created_at: p.createdAt,
      })
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async get(id: string): Promise<PrincipalRecord | undefined> {
    const row = await this.ctx.db.selectFrom('principals').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toPrincipal(row);
  }

  async findByName(name: string): Promise<PrincipalRecord | undefined> {
    const row = await this.ctx.db.selectFrom('principals').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toPrincipal(row);
  }

  async list(kind?: PrincipalKind): Promise<PrincipalRecord[]> {
    let query = this.ctx.db.selectFrom('principals').selectAll().orderBy('name');
    if (kind) query = query.where('kind', '=', kind);
    return (await query.execute()).map(toPrincipal);
  }

  async count(): Promise<number> {
    const row = await this.ctx.db.selectFrom('principals').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async update(id: string, changes: { disabled?: boolean; expiresAt?: number | null; description?: string | null }): Promise<boolean> {
    const set: { disabled?: number; expires_at?: number | null; description?: string | null } = {};
    if (changes.disabled !== undefined) set.disabled = changes.disabled ? 1 : 0;
    if (changes.expiresAt !== undefined) set.expires_at = changes.expiresAt;
    if (changes.description !== undefined) set.description = changes.description;
    if (Object.keys(set).length === 0) return (await this.get(id)) !== undefined;
    const result = await this.ctx.db.updateTable('principals').set(set).where('id', '=', id).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async delete(id: string): Promise<boolean> {
    return this.ctx.transaction(async (trx) => {
      await trx.deleteFrom('credentials').where('principal_id', '=', id).execute();
      await trx.deleteFrom('grants').where('principal_id', '=', id).execute();
      await trx.deleteFrom('refresh_tokens').where('principal_id', '=', id).execute();
      await trx.deleteFrom('federated_credentials').where('principal_id', '=', id).execute();
      const result = await trx.deleteFrom('principals').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }
}

export class SqlCredentialIndex implements CredentialIndex {
  constructor(private readonly ctx: SqlContext) {}

  async list(principalId: string): Promise<CredentialRecord[]> {
    const rows = await this.ctx.db.selectFrom('credentials').selectAll().where('principal_id', '=', principalId).orderBy('label').execute();
    return rows.map((row) => ({
      id: row.id,
      principalId: row.principal_id,
      label: row.label,
      hash: row.hash,
      expiresAt: row.expires_at === null ? undefined : Number(row.expires_at),
      createdAt: Number(row.created_at),
    }));
  }

  async put(c: CredentialRecord): Promise<string | undefined> {
    return this.ctx.transaction(async (trx) => {
      const old = await trx
        .selectFrom('credentials')
        .select('id')
        .where('principal_id', '=', c.principalId)
        .where('label', '=', c.label)
        .executeTakeFirst();
      if (old) await trx.deleteFrom('credentials').where('id', '=', old.id).execute();
      await trx
        .insertInto('credentials')
        .values({ id: c.id, principal_id: c.principalId, label: c.label, hash: c.hash, expires_at: c.expiresAt ?? null, created_at: c.createdAt })
        .execute();
      return old?.id;
    });
  }

  async remove(principalId: string, label: string): Promise<string | undefined> {
    const old = await this.ctx.db
      .selectFrom('credentials')
      .select('id')
      .where('principal_id', '=', principalId)
      .where('label', '=', label)
      .executeTakeFirst();
    if (old) await this.ctx.db.deleteFrom('credentials').where('id', '=', old.id).execute();
    return old?.id;
  }
}

export class SqlGrantIndex implements GrantIndex {
  constructor(private readonly ctx: SqlContext) {}

  async list(principalId: string): Promise<GrantRecord[]> {
    return this.ctx.db
      .selectFrom('grants')
      .select(['pattern', 'permission'])
      .where('principal_id', '=', principalId)
      .orderBy('pattern')
      .orderBy('permission')
      .execute();
  }

  async replace(principalId: string, grants: readonly GrantRecord[]): Promise<void> {
    await this.ctx.transaction(async (trx) => {
      await trx.deleteFrom('grants').where('principal_id', '=', principalId).execute();
      const unique = [...new Map(grants.map((g) => [`${g.pattern}\u0000${g.permission}`, g])).values()];
      if (unique.length > 0) {
        await trx
          .insertInto('grants')
          .values(unique.map((g) => ({ principal_id: principalId, pattern: g.pattern, permission: g.permission })))
          .execute();
      }
    });
  }
}
