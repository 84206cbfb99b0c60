/**
 * The audit log as the management services use it: `record` writes one entry naming the actor,
 * `list` reads it back for `GET /api/v1/audit`.
 */
import type { AuditEntryView } from '../../api/audit.js';
import type { AuthMetadata } from '../../metadata/auth-store.js';
import { ApiError } from '../../api/errors.js';
import type { Actor } from '../../shared/actor.js';
import type { Clock } from '../../shared/clock.js';
import { auditEntryView } from './views.js';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class AuditLog {
  constructor(
    private readonly store: Pick<AuthMetadata, 'audit' | 'principals'>,
    private readonly clock: Clock,
  ) {}

  /** Rule: every change made through the management API is recorded with the actor who made it. */
  async record(actor: Actor, event: string, detail: Record<string, unknown>): Promise<void> {
    await this.store.audit.append({ at: this.clock.now(), event, ...actor, detail });
  }

  /**
   * Entries, newest first. `principal` is an id or a name; the id of a deleted principal still
   * finds its history (PRINCIPAL_UNKNOWN for anything else that names no principal).
   */
  async list(filter: { limit: number; principal?: string | undefined }): Promise<AuditEntryView[]> {
    const ref = filter.principal;
    let principalId: string | undefined;
    if (ref !== undefined && ref !== '') {
      const found = (await this.store.principals.get(ref)) ?? (await this.store.principals.findByName(ref));
      if (found) principalId = found.id;
      else if (uuidPattern.test(ref)) principalId = ref;
      else throw new ApiError('PRINCIPAL_UNKNOWN', `no principal with id or name ${JSON.stringify(ref.slice(0, 128))}`);
    }
    const entries = await this.store.audit.list({ limit: filter.limit, principalId });
    return entries.map(auditEntryView);
  }
}
