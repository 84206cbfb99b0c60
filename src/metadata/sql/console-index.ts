import type { ConsoleMetadata, ConsoleSessionIndex, ConsoleSessionRecord, SsoIdentityIndex, SsoIdentityRecord } from '../console-store.js';
import type { ConsoleIdentitiesTable, ConsoleSessionsTable } from '../schema.js';
import type { SqlContext } from './context.js';

class SqlConsoleSessionIndex implements ConsoleSessionIndex {
  constructor(private readonly ctx: SqlContext) {}

  async add(s: ConsoleSessionRecord): Promise<void> {
    await this.ctx.db
      .insertInto('console_sessions')
      .values({
        id_hash: s.idHash,
        principal_id: s.principalId,
        method: s.method,
        provider: s.provider ?? null,
        created_at: s.createdAt,
        expires_at: s.expiresAt,
        last_seen_at: s.lastSeenAt,
      })
      .execute();
  }

  async get(idHash: string): Promise<ConsoleSessionRecord | undefined> {
    const row = await this.ctx.db.selectFrom('console_sessions').selectAll().where('id_hash', '=', idHash).executeTakeFirst();
    return row && sessionRecord(row);
  }

  async touch(idHash: string, now: number): Promise<void> {
    await this.ctx.db.updateTable('console_sessions').set({ last_seen_at: now }).where('id_hash', '=', idHash).execute();
  }

  async delete(idHash: string): Promise<boolean> {
    const result = await this.ctx.db.deleteFrom('console_sessions').where('id_hash', '=', idHash).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async deleteForPrincipal(principalId: string): Promise<number> {
    const result = await this.ctx.db.deleteFrom('console_sessions').where('principal_id', '=', principalId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async prune(now: number, idleCutoff: number): Promise<number> {
    const result = await this.ctx.db
      .deleteFrom('console_sessions')
      .where((eb) => eb.or([eb('expires_at', '<=', now), eb('last_seen_at', '<', idleCutoff)]))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function sessionRecord(row: ConsoleSessionsTable): ConsoleSessionRecord {
  return {
    idHash: row.id_hash,
    principalId: row.principal_id,
    method: row.method === 'sso' ? 'sso' : 'password',
    provider: row.provider ?? undefined,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    lastSeenAt: Number(row.last_seen_at),
  };
}

class SqlSsoIdentityIndex implements SsoIdentityIndex {
  constructor(private readonly ctx: SqlContext) {}

  async get(issuer: string, subject: string): Promise<SsoIdentityRecord | undefined> {
    const row = await this.ctx.db.selectFrom('console_identities').selectAll().where('issuer', '=', issuer).where('subject', '=', subject).executeTakeFirst();
    return row && identityRecord(row);
  }

  async listForPrincipal(principalId: string): Promise<SsoIdentityRecord[]> {
    const rows = await this.ctx.db.selectFrom('console_identities').selectAll().where('principal_id', '=', principalId).orderBy('issuer').execute();
    return rows.map(identityRecord);
  }

  async link(identity: SsoIdentityRecord): Promise<boolean> {
    const result = await this.ctx.db
      .insertInto('console_identities')
      .values({
        issuer: identity.issuer,
        subject: identity.subject,
        provider: identity.provider,
        principal_id: identity.principalId,
        created_at: identity.createdAt,
        last_sign_in_at: identity.lastSignInAt,
      })
      .onConflict((oc) => oc.columns(['issuer', 'subject']).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async touch(issuer: string, subject: string, now: number): Promise<void> {
    await this.ctx.db.updateTable('console_identities').set({ last_sign_in_at: now }).where('issuer', '=', issuer).where('subject', '=', subject).execute();
  }
}

function identityRecord(row: ConsoleIdentitiesTable): SsoIdentityRecord {
  return {
    issuer: row.issuer,
    subject: row.subject,
    provider: row.provider,
    principalId: row.principal_id,
    createdAt: Number(row.created_at),
    lastSignInAt: Number(row.last_sign_in_at),
  };
}

export function sqlConsoleMetadata(ctx: SqlContext): ConsoleMetadata {
  return { sessions: new SqlConsoleSessionIndex(ctx), identities: new SqlSsoIdentityIndex(ctx) };
}
