import type { RawBuilder, Selectable } from 'kysely';
import { sql } from '../kysely.js';
import type { Dialect } from '../migrations/columns.js';
import type { CredentialIndex, CredentialRecord, GrantIndex, GrantRecord, PrincipalIndex, PrincipalRecord, PrincipalWithGrants } from '../auth-store.js';
import type { PrincipalKind, PrincipalsTable } from '../schema.js';
import { storableText, type SqlContext } from './context.js';
import { preparedAll, preparedFirst } from './prepared.js';

// What every token grant reads (the principal, its credential, its grants): compiled once (prepared.ts).
const principalById = preparedFirst((db, id: string) => db.selectFrom('principals').selectAll().where('id', '=', id));
const principalByName = preparedFirst((db, name: string) => db.selectFrom('principals').selectAll().where('name', '=', name));
const credentialById = preparedFirst((db, id: string) => db.selectFrom('credentials').selectAll().where('id', '=', id));
const credentialsOf = preparedAll((db, principalId: string) =>
  db.selectFrom('credentials').selectAll().where('principal_id', '=', principalId).orderBy('label'),
);
const grantsOf = preparedAll((db, principalId: string) =>
  db.selectFrom('grants').select(['pattern', 'permission']).where('principal_id', '=', principalId).orderBy('pattern').orderBy('permission'),
);

/**
 * The grants of the principal aliased `p`, as one JSON text column (`[[pattern, permission], ...]`,
 * in grantsOf's order), so a principal and its grants come in one statement. One SQL per dialect.
 */
export function grantsColumn(dialect: Dialect): RawBuilder<string> {
  return dialect === 'postgres'
    ? sql<string>`(select coalesce(json_agg(json_build_array(g.pattern, g.permission) order by g.pattern, g.permission), '[]')::text from grants g where g.principal_id = p.id)`
    : sql<string>`(select json_group_array(json_array(g.pattern, g.permission) order by g.pattern, g.permission) from grants g where g.principal_id = p.id)`;
}

/** The grants column of grantsColumn, read back. */
export function grantsFromColumn(text: string): GrantRecord[] {
  return (JSON.parse(text) as [string, string][]).map(([pattern, permission]) => ({ pattern, permission }));
}

function principalWithGrantsQueries(dialect: Dialect) {
  return {
    byId: preparedFirst((db, id: string) => db.selectFrom('principals as p').selectAll('p').select(grantsColumn(dialect).as('grants')).where('p.id', '=', id)),
    byName: preparedFirst((db, name: string) =>
      db.selectFrom('principals as p').selectAll('p').select(grantsColumn(dialect).as('grants')).where('p.name', '=', name),
    ),
  };
}
const principalWithGrants = { sqlite: principalWithGrantsQueries('sqlite'), postgres: principalWithGrantsQueries('postgres') };

export function toPrincipal(row: Selectable<PrincipalsTable>): PrincipalRecord {
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
        description: storableText(p.description ?? null),
        disabled: p.disabled ? 1 : 0,
        expires_at: p.expiresAt ?? null,
        created_at: p.createdAt,
      })
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async get(id: string): Promise<PrincipalRecord | undefined> {
    const row = await principalById(this.ctx.db, id);
    return row && toPrincipal(row);
  }

  async findByName(name: string): Promise<PrincipalRecord | undefined> {
    const row = await principalByName(this.ctx.db, name);
    return row && toPrincipal(row);
  }

  async getWithGrants(id: string): Promise<PrincipalWithGrants | undefined> {
    const row = await principalWithGrants[this.ctx.dialect].byId(this.ctx.db, id);
    return row && { principal: toPrincipal(row), grants: grantsFromColumn(row.grants) };
  }

  async findByNameWithGrants(name: string): Promise<PrincipalWithGrants | undefined> {
    const row = await principalWithGrants[this.ctx.dialect].byName(this.ctx.db, name);
    return row && { principal: toPrincipal(row), grants: grantsFromColumn(row.grants) };
  }

  async list(kind?: PrincipalKind): Promise<PrincipalRecord[]> {
    let query = this.ctx.db.selectFrom('principals').selectAll().orderBy('name');
    if (kind) query = query.where('kind', '=', kind);
    return (await query.execute()).map(toPrincipal);
  }

  async count(): Promise<number> {
    const row = await this.ctx.db
      .selectFrom('principals')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async update(id: string, changes: { disabled?: boolean; expiresAt?: number | null; description?: string | null }): Promise<boolean> {
    const set: { disabled?: number; expires_at?: number | null; description?: string | null } = {};
    if (changes.disabled !== undefined) set.disabled = changes.disabled ? 1 : 0;
    if (changes.expiresAt !== undefined) set.expires_at = changes.expiresAt;
    if (changes.description !== undefined) set.description = storableText(changes.description);
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
    const rows = await credentialsOf(this.ctx.db, principalId);
    return rows.map((row) => ({
      id: row.id,
      principalId: row.principal_id,
      label: row.label,
      hash: row.hash,
      expiresAt: row.expires_at === null ? undefined : Number(row.expires_at),
      createdAt: Number(row.created_at),
    }));
  }

  async get(id: string): Promise<CredentialRecord | undefined> {
    const row = await credentialById(this.ctx.db, id);
    return (
      row && {
        id: row.id,
        principalId: row.principal_id,
        label: row.label,
        hash: row.hash,
        expiresAt: row.expires_at === null ? undefined : Number(row.expires_at),
        createdAt: Number(row.created_at),
      }
    );
  }

  /**
   * Replaces the (principal, label) secret in place: the existing row is locked (PostgreSQL) and
   * overwritten by an upsert, so of two concurrent rotations the second replaces the first's row
   * (and reports its id) instead of failing on the unique (principal, label) key.
   */
  async put(c: CredentialRecord): Promise<string | undefined> {
    return this.ctx.transaction(async (trx) => {
      const existing = trx.selectFrom('credentials').select('id').where('principal_id', '=', c.principalId).where('label', '=', c.label);
      const old = await (this.ctx.dialect === 'postgres' ? existing.forUpdate() : existing).executeTakeFirst();
      const row = { id: c.id, principal_id: c.principalId, label: c.label, hash: c.hash, expires_at: c.expiresAt ?? null, created_at: c.createdAt };
      await trx
        .insertInto('credentials')
        .values(row)
        .onConflict((oc) =>
          oc.columns(['principal_id', 'label']).doUpdateSet({ id: row.id, hash: row.hash, expires_at: row.expires_at, created_at: row.created_at }),
        )
        .execute();
      return old?.id;
    });
  }

  /** One statement, so of two concurrent removals only one reports the removed id. */
  async remove(principalId: string, label: string): Promise<string | undefined> {
    const old = await this.ctx.db
      .deleteFrom('credentials')
      .where('principal_id', '=', principalId)
      .where('label', '=', label)
      .returning('id')
      .executeTakeFirst();
    return old?.id;
  }
}

export class SqlGrantIndex implements GrantIndex {
  constructor(private readonly ctx: SqlContext) {}

  async list(principalId: string): Promise<GrantRecord[]> {
    return grantsOf(this.ctx.db, principalId);
  }

  async replace(principalId: string, grants: readonly GrantRecord[]): Promise<void> {
    await this.ctx.transaction(async (trx) => {
      // PostgreSQL: the principal's row lock serialises replaces of its grants (the last one wins,
      // as on SQLite) instead of two deletes missing each other's inserts and colliding on the key.
      if (this.ctx.dialect === 'postgres') await trx.selectFrom('principals').select('id').where('id', '=', principalId).forUpdate().execute();
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
