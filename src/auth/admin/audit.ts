/**
 * The audit log as the management services use it: `record` writes one entry naming the actor,
 * `page` reads it back for `GET /api/v1/audit` and `berth audit`, filtered and paged.
 */
import type { AuditEntryView, AuditPageView, AuditQuery } from '../../api/audit.js';
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
    return (await this.page(filter)).entries;
  }

  /**
   * A page of entries, newest first, that meet every filter given (principal: id or name;
   * repository; event name or prefix ending in `.`; time range; `before`: the previous page's
   * `next`). `next` is null on the last page.
   */
  async page(filter: Partial<AuditQuery> & { limit: number }): Promise<AuditPageView> {
    const principalId = await this.principalId(filter.principal);
    const entries = await this.store.audit.list({
      limit: filter.limit,
      principalId,
      repository: filter.repository,
      event: filter.event,
      since: filter.since,
      until: filter.until,
      before: filter.before,
    });
    const last = entries.at(-1);
    return { entries: entries.map(auditEntryView), next: entries.length === filter.limit && last ? last.id : null };
  }

  private async principalId(ref: string | undefined): Promise<string | undefined> {
    if (ref === undefined || ref === '') return undefined;
    const found = (await this.store.principals.get(ref)) ?? (await this.store.principals.findByName(ref));
    if (found) return found.id;
    if (uuidPattern.test(ref)) return ref;
    throw new ApiError('PRINCIPAL_UNKNOWN', `no principal with id or name ${JSON.stringify(ref.slice(0, 128))}`);
  }
}
