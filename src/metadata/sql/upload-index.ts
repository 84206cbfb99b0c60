import type { UploadIndex, UploadLayout, UploadRecord } from '../store.js';
import type { SqlContext } from './context.js';
import { preparedFirst, preparedStatement } from './prepared.js';

// Every PATCH and PUT of an upload reads its session first (see prepared.ts).
const uploadById = preparedFirst((db, id: string, repositoryId: number) =>
  db.selectFrom('uploads').selectAll().where('id', '=', id).where('repository_id', '=', repositoryId),
);
// Every push opens a session and ends it (blob-index.ts): compiled once (prepared.ts).
const insertUpload = preparedStatement((db, id: string, repositoryId: number, now: number, layout: UploadLayout) =>
  db.insertInto('uploads').values({ id, repository_id: repositoryId, created_at: now, updated_at: now, layout }),
);
export const deleteUpload = preparedStatement((db, id: string) => db.deleteFrom('uploads').where('id', '=', id));
// Every PATCH of a chunked upload.
const touchUpload = preparedStatement((db, id: string, now: number) => db.updateTable('uploads').set({ updated_at: now }).where('id', '=', id));

export class SqlUploadIndex implements UploadIndex {
  constructor(private readonly ctx: SqlContext) {}

  async create(repository: string, id: string, now: number, layout: UploadLayout): Promise<void> {
    // The repository is created outside the session's insert, and its id is then known to every later write.
    const repositoryId = await this.ctx.ensureRepositoryId(repository, now);
    await this.ctx.write([insertUpload(this.ctx.db, id, repositoryId, now, layout)]);
  }

  async get(repository: string, id: string): Promise<UploadRecord | undefined> {
    const repositoryId = await this.ctx.findRepositoryId(repository);
    if (repositoryId === undefined) return undefined;
    const row = await uploadById(this.ctx.db, id, repositoryId);
    return row && { id: row.id, repository, createdAt: Number(row.created_at), updatedAt: Number(row.updated_at), layout: layoutOf(row.layout) };
  }

  async touch(id: string, now: number): Promise<void> {
    await this.ctx.write([touchUpload(this.ctx.db, id, now)]);
  }

  async delete(id: string): Promise<void> {
    await this.ctx.write([deleteUpload(this.ctx.db, id)]);
  }

  async exists(id: string): Promise<boolean> {
    const row = await this.ctx.db.selectFrom('uploads').select('id').where('id', '=', id).executeTakeFirst();
    return row !== undefined;
  }

  async listIdleSince(cutoff: number): Promise<UploadRecord[]> {
    const rows = await this.ctx.db
      .selectFrom('uploads as u')
      .innerJoin('repositories as r', 'r.id', 'u.repository_id')
      .select(['u.id', 'r.name', 'u.created_at', 'u.updated_at', 'u.layout'])
      .where('u.updated_at', '<', cutoff)
      .execute();
    return rows.map((row) => ({
      id: row.id,
      repository: row.name,
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
      layout: layoutOf(row.layout),
    }));
  }
}

/** A stored layout; anything but `flat` is the layout sessions had before the column existed. */
function layoutOf(value: string): UploadLayout {
  return value === 'flat' ? 'flat' : 'directory';
}
