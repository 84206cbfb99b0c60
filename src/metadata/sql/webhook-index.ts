/** Webhook subscriptions in SQL (see metadata/event-store.ts). */
import type { Selectable } from 'kysely';
import type { EventAction, WebhookFormat, WebhookIndex, WebhookRecord } from '../event-store.js';
import type { WebhooksTable } from '../schema.js';
import { isUniqueViolation, type SqlContext } from './context.js';

export function toWebhookRecord(row: Selectable<WebhooksTable>): WebhookRecord {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    events: JSON.parse(row.events) as EventAction[],
    filters: JSON.parse(row.filters) as string[],
    headers: JSON.parse(row.headers) as Record<string, string>,
    secret: row.secret,
    previousSecret: row.previous_secret ?? undefined,
    previousSecretUntil: row.previous_secret_until === null ? undefined : Number(row.previous_secret_until),
    format: row.format as WebhookFormat,
    enabled: Number(row.enabled) === 1,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toRow(record: WebhookRecord): Selectable<WebhooksTable> {
  return {
    id: record.id,
    name: record.name,
    url: record.url,
    events: JSON.stringify(record.events),
    filters: JSON.stringify(record.filters),
    headers: JSON.stringify(record.headers),
    secret: record.secret,
    previous_secret: record.previousSecret ?? null,
    previous_secret_until: record.previousSecretUntil ?? null,
    format: record.format,
    enabled: record.enabled ? 1 : 0,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
  };
}

export class SqlWebhookIndex implements WebhookIndex {
  constructor(private readonly ctx: SqlContext) {}

  async create(record: WebhookRecord): Promise<boolean> {
    const result = await this.ctx.db
      .insertInto('webhooks')
      .values(toRow(record))
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async get(id: string): Promise<WebhookRecord | undefined> {
    const row = await this.ctx.db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toWebhookRecord(row);
  }

  async findByName(name: string): Promise<WebhookRecord | undefined> {
    const row = await this.ctx.db.selectFrom('webhooks').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toWebhookRecord(row);
  }

  async list(): Promise<WebhookRecord[]> {
    const rows = await this.ctx.db.selectFrom('webhooks').selectAll().orderBy('name').execute();
    return rows.map(toWebhookRecord);
  }

  async update(record: WebhookRecord): Promise<boolean> {
    try {
      return await this.ctx.transaction(async (trx) => {
        const clash = await trx.selectFrom('webhooks').select('id').where('name', '=', record.name).where('id', '!=', record.id).executeTakeFirst();
        if (clash) return false;
        const { id: _id, created_at: _created, ...fields } = toRow(record);
        await trx.updateTable('webhooks').set(fields).where('id', '=', record.id).execute();
        return true;
      });
    } catch (err) {
      // Another replica took the name between the check and the update (PostgreSQL): same answer.
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async delete(id: string): Promise<boolean> {
    // Deliveries and their attempts go with it (ON DELETE CASCADE).
    const result = await this.ctx.db.deleteFrom('webhooks').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
