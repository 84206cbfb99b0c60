import type { Selectable } from 'kysely';
import type { CredentialKind, InstanceSettingsIndex, RefreshTokenIndex, RefreshTokenRecord, SigningKeyIndex, SigningKeyRecord } from '../auth-store.js';
import type { RefreshTokensTable, SigningKeysTable } from '../schema.js';
import type { SqlContext } from './context.js';
import { GroupCommit } from './group-commit.js';
import { preparedFirst, preparedRows } from './prepared.js';

/** Every refresh-token grant reads its token's row: compiled once (prepared.ts). */
const refreshTokenById = preparedFirst((db, id: string) => db.selectFrom('refresh_tokens').selectAll().where('id', '=', id));

/** Every refresh token handed out is recorded: the group commit's insert, compiled once per batch size (prepared.ts). */
const insertTokens = preparedRows<Selectable<RefreshTokensTable>>(
  ['id', 'principal_id', 'credential_id', 'credential_kind', 'expires_at', 'created_at', 'revoked_at'],
  (db, rows) => db.insertInto('refresh_tokens').values(rows),
);

/** Rows one group-commit insert writes at most (7 parameters each, under SQLite's oldest limit of 999). */
const addBatch = 100;

export class SqlRefreshTokenIndex implements RefreshTokenIndex {
  /** Every refresh-token grant records its token: by group commit (group-commit.ts). */
  private readonly added: GroupCommit<Selectable<RefreshTokensTable>>;

  constructor(private readonly ctx: SqlContext) {
    this.added = new GroupCommit((rows) => this.ctx.write([insertTokens(this.ctx.db, rows)]), addBatch);
  }

  /** Settles once the row is committed: a token is never handed out before it can be found (and revoked). */
  async add(t: RefreshTokenRecord): Promise<void> {
    await this.added.add({
      id: t.id,
      principal_id: t.principalId,
      credential_id: t.credentialId ?? null,
      credential_kind: t.credentialKind ?? null,
      expires_at: t.expiresAt,
      created_at: t.createdAt,
      revoked_at: t.revokedAt ?? null,
    });
  }

  async get(id: string): Promise<RefreshTokenRecord | undefined> {
    const row = await refreshTokenById(this.ctx.db, id);
    return (
      row && {
        id: row.id,
        principalId: row.principal_id,
        credentialId: row.credential_id ?? undefined,
        credentialKind: credentialKind(row.credential_kind),
        expiresAt: Number(row.expires_at),
        createdAt: Number(row.created_at),
        revokedAt: row.revoked_at === null ? undefined : Number(row.revoked_at),
      }
    );
  }

  async revoke(filter: { principalId: string } | { credentialId: string }, now: number): Promise<number> {
    let query = this.ctx.db.updateTable('refresh_tokens').set({ revoked_at: now }).where('revoked_at', 'is', null);
    query = 'principalId' in filter ? query.where('principal_id', '=', filter.principalId) : query.where('credential_id', '=', filter.credentialId);
    return Number((await query.executeTakeFirst()).numUpdatedRows);
  }

  async prune(cutoff: number): Promise<number> {
    const result = await this.ctx.db.deleteFrom('refresh_tokens').where('expires_at', '<', cutoff).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

/** An unknown value (a newer release's kind) counts as unknown: both tables are then checked. */
function credentialKind(value: string | null): CredentialKind | undefined {
  return value === 'secret' || value === 'federated' ? value : undefined;
}

function toKey(row: Selectable<SigningKeysTable>): SigningKeyRecord {
  return {
    kid: row.kid,
    alg: row.alg,
    privateJwk: row.private_jwk,
    publicJwk: row.public_jwk,
    createdAt: Number(row.created_at),
    retiredAt: row.retired_at === null ? undefined : Number(row.retired_at),
    revokedAt: row.revoked_at === null ? undefined : Number(row.revoked_at),
  };
}

export class SqlSigningKeyIndex implements SigningKeyIndex {
  constructor(private readonly ctx: SqlContext) {}

  async listUsable(retiredAfter: number): Promise<SigningKeyRecord[]> {
    const rows = await this.ctx.db
      .selectFrom('signing_keys')
      .selectAll()
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('retired_at', 'is', null), eb('retired_at', '>', retiredAfter)]))
      .orderBy('created_at', 'desc')
      .orderBy('kid', 'desc')
      .execute();
    return rows.map(toKey);
  }

  async list(): Promise<SigningKeyRecord[]> {
    const rows = await this.ctx.db.selectFrom('signing_keys').selectAll().orderBy('created_at', 'desc').orderBy('kid', 'desc').execute();
    return rows.map(toKey);
  }

  async listRevoked(): Promise<string[]> {
    const rows = await this.ctx.db.selectFrom('signing_keys').select('kid').where('revoked_at', 'is not', null).execute();
    return rows.map((row) => row.kid);
  }

  async add(key: SigningKeyRecord): Promise<void> {
    await this.ctx.db
      .insertInto('signing_keys')
      .values({
        kid: key.kid,
        alg: key.alg,
        private_jwk: key.privateJwk,
        public_jwk: key.publicJwk,
        created_at: key.createdAt,
        retired_at: key.retiredAt ?? null,
        revoked_at: key.revokedAt ?? null,
      })
      .execute();
  }

  async retireAllExcept(keep: string, now: number): Promise<void> {
    await this.ctx.db.updateTable('signing_keys').set({ retired_at: now }).where('kid', '!=', keep).where('retired_at', 'is', null).execute();
  }

  /** One conditional update: of two concurrent revocations of one key, one reports it. */
  async revoke(kid: string, now: number): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('signing_keys')
      .set((eb) => ({ revoked_at: now, retired_at: eb.fn.coalesce('retired_at', eb.val(now)) }))
      .where('kid', '=', kid)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }
}

export class SqlInstanceSettingsIndex implements InstanceSettingsIndex {
  constructor(private readonly ctx: SqlContext) {}

  async getOrCreate(name: string, value: string, now: number): Promise<string> {
    await this.ctx.db
      .insertInto('instance_settings')
      .values({ name, value, created_at: now })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const row = await this.ctx.db.selectFrom('instance_settings').select('value').where('name', '=', name).executeTakeFirstOrThrow();
    return row.value;
  }
}
