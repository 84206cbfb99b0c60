import type { AttestationKeyIndex, AttestationKeyRecord } from '../attestation-store.js';
import type { SqlContext } from './context.js';

export class SqlAttestationKeyIndex implements AttestationKeyIndex {
  constructor(private readonly ctx: SqlContext) {}

  async list(): Promise<AttestationKeyRecord[]> {
    const rows = await this.ctx.db.selectFrom('attestation_keys').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
    return rows.map((row) => ({
      id: row.id,
      algorithm: row.algorithm,
      privatePem: row.private_pem,
      publicPem: row.public_pem,
      createdAt: Number(row.created_at),
      retiredAt: row.retired_at === null ? undefined : Number(row.retired_at),
    }));
  }

  async addAndRetireOthers(key: AttestationKeyRecord, now: number): Promise<void> {
    await this.ctx.transaction(async (trx) => {
      await trx.updateTable('attestation_keys').set({ retired_at: now }).where('retired_at', 'is', null).execute();
      await trx
        .insertInto('attestation_keys')
        .values({
          id: key.id,
          algorithm: key.algorithm,
          private_pem: key.privatePem,
          public_pem: key.publicPem,
          created_at: key.createdAt,
          retired_at: key.retiredAt ?? null,
        })
        .execute();
    });
  }
}
