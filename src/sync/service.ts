/**
 * Selective sync as one service: rule management, the webhook receiver's logic, on-demand runs
 * and status, over the metadata store, with the background worker (`worker.ts`) that does the
 * copying. Built once by `createApp` (`services.sync`); HTTP stays in the handlers
 * (`http/handlers/admin/sync.ts`), which only parse and send the views these methods answer
 * with. Every rule change is audited with its actor.
 *
 * Receiver contract (docs/sync.md):
 *   - unknown rule, a rule without the webhook trigger, a missing or wrong signature or bearer
 *     secret: 401, with the same reasons either way, so the endpoint does not tell which rule
 *     names exist;
 *   - authenticated but unparseable: 400 (in a Distribution envelope, an unreadable event is only
 *     `rejected`, so one bad event does not make Distribution resend the batch forever);
 *   - a one-event delivery (Berth, ACR) for a repository outside the rule's globs: 403;
 *     a Distribution envelope is always 202 (it carries every event of its registry, and a
 *     refusal would make Distribution retry it forever), with such events listed as `rejected`;
 *   - otherwise 202 at once: the work is queued, never done in the request. Events that are not
 *     pushes, untagged manifests and tags the rule filters out are `ignored`; an event id seen
 *     before is a `duplicate`; an image already queued with the same digest is `unchanged`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { SyncDeliveryResult, SyncEventResult, SyncRuleChangeView, SyncRuleView, SyncRunView, SyncStatusView } from '../api/sync.js';
import type { AuditIndex } from '../metadata/auth-store.js';
import type { SyncMetadata } from '../metadata/sync-store.js';
import type { Metrics } from '../metrics/index.js';
import type { Egress } from '../net/egress.js';
import { RegistryError } from '../oci/errors.js';
import { ApiError } from '../api/errors.js';
import { isValidTag } from '../oci/names.js';
import type { Registry } from '../registry/index.js';
import type { Actor } from '../shared/actor.js';
import type { Clock } from '../shared/clock.js';
import { isLoopbackHost } from '../shared/loopback.js';
import { repositorySelected, tagSelected } from './filters.js';
import { MalformedNotification, authenticateDelivery, parseNotifications, type DeliveryHeaders, type Notification } from './notifications.js';
import {
  applyUpdate,
  reconcileInterval,
  ruleRecord,
  ruleRow,
  specFromInput,
  specJson,
  type RuleInput,
  type RuleUpdate,
  type SecretChange,
  type SyncRule,
  type SyncRuleRecord,
  type SyncRuleSpec,
} from './rule.js';
import { SecretReferences, type SecretReferenceSettings } from './secret-refs.js';
import { SourcePool } from './sources.js';
import { auditDetail, imageView, itemView, ruleView, webhookUrl } from './views.js';
import { SyncWorker, type SyncSettings } from './worker.js';

/** What a sync webhook delivery did (the receiver's 202 body). */
export type DeliveryResult = SyncDeliveryResult;

export interface SyncServiceDependencies {
  store: SyncMetadata;
  registry: Registry;
  egress: Egress;
  settings: SyncSettings;
  clock: Clock;
  /** Rule changes are audited with their actor. */
  audit: AuditIndex;
  logger: Logger;
  /** Where rules may reference server files and variables (`secrets.*`; unset: nowhere). */
  secrets: SecretReferenceSettings;
  /** The environment `passwordEnv` reads (default: the process's). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Copies by rule and result, and the job runners' own families. */
  metrics?: Metrics | undefined;
}

const maxReportedEvents = 100;

export class SyncService {
  readonly worker: SyncWorker;
  readonly settings: SyncSettings;
  private readonly store: SyncMetadata;
  private readonly egress: Egress;
  private readonly logger: Logger;
  private readonly sources: SourcePool;
  private readonly secrets: SecretReferences;
  /** Stands in for the secret of a rule that does not exist, so its 401 reads like a wrong secret. */
  private readonly decoySecret = randomBytes(32).toString('base64url');

  constructor(private readonly deps: SyncServiceDependencies) {
    const { store, registry, egress, settings, clock, logger } = deps;
    this.store = store;
    this.egress = egress;
    this.settings = settings;
    this.logger = logger;
    this.secrets = new SecretReferences(deps.secrets, logger, deps.env);
    this.sources = new SourcePool(egress, settings.defaultLimits, settings.retry.maxDelayMs, logger, this.secrets);
    this.worker = new SyncWorker(this.store, registry, this.sources, settings, clock, logger, deps.metrics);
  }

  start(): void {
    this.worker.start();
  }

  stop(): Promise<void> {
    return this.worker.stop();
  }

  private now(): number {
    return this.deps.clock.now();
  }

  // -------------------------------------------------------------------------------------------
  // Rules (the management API; each change audited with its actor). Views name the webhook
  // receiver's URL, which starts with `baseUrl`: where this registry is reached.

  /** Every rule, sorted by name. */
  async listRules(baseUrl: string): Promise<SyncRuleView[]> {
    return (await this.store.rules.list()).map((row) => this.view(ruleRecord(row), baseUrl));
  }

  /** The rule by name; 404 SYNC_RULE_UNKNOWN otherwise. */
  async getRule(name: string, baseUrl: string): Promise<SyncRuleView> {
    return this.view(await this.ruleNamed(name), baseUrl);
  }

  /** Creates a rule; the answer carries the webhook secret only when Berth generated it (shown once). */
  async createRule(actor: Actor, input: RuleInput, baseUrl: string): Promise<SyncRuleChangeView> {
    const { spec, secret } = specFromInput(input, generateSecret);
    await this.assertSourceAllowed(spec);
    const now = this.now();
    const rule: SyncRule = {
      ...spec,
      id: randomUUID(),
      name: input.name,
      enabled: input.enabled,
      webhookSecret: secret.kind === 'set' ? secret.secret : null,
      createdAt: now,
      updatedAt: now,
    };
    // The first run is the backfill: due at once for rules that run by themselves.
    const automatic = reconcileInterval(spec, this.settings) !== undefined;
    if (!(await this.store.rules.create(ruleRow(rule), automatic ? now : null))) {
      throw new ApiError('SYNC_RULE_EXISTS', `a sync rule named ${input.name} already exists`);
    }
    this.worker.nudge();
    const created = await this.ruleNamed(input.name);
    await this.audit(actor, 'admin.sync_rule.created', auditDetail(created));
    return this.changeView(created, shownSecret(secret), baseUrl);
  }

  /** Applies a PATCH (objects merge one level deep). */
  async updateRule(actor: Actor, name: string, update: RuleUpdate, baseUrl: string): Promise<SyncRuleChangeView> {
    const current = await this.ruleNamed(name);
    const { spec, secret } = applyUpdate(current, update, generateSecret);
    if (update.source !== undefined) await this.assertSourceAllowed(spec);
    const enabled = update.enabled ?? current.enabled;
    const now = this.now();
    const interval = reconcileInterval(spec, this.settings);
    // A changed selection or a re-enabled rule is reconciled at once; otherwise the schedule
    // follows the (maybe new) interval from the last reconcile.
    const selectionChanged =
      update.source !== undefined || update.repositories !== undefined || update.tags !== undefined || update.destinationPrefix !== undefined;
    const reenabled = enabled && !current.enabled;
    let nextReconcileAt: number | null = null;
    if (interval !== undefined) {
      nextReconcileAt = selectionChanged || reenabled || current.state.backfilledAt === null ? now : (current.state.lastReconcileAt ?? now) + interval;
    }
    const webhookSecret = secret.kind === 'keep' ? current.webhookSecret : secret.kind === 'drop' ? null : secret.secret;
    await this.store.rules.update(current.id, {
      spec: specJson(spec),
      enabled,
      webhookSecret: spec.triggers.webhook ? webhookSecret : null,
      nextReconcileAt,
      now,
    });
    this.sources.forget(current.id);
    this.worker.nudge();
    const updated = await this.ruleNamed(name);
    const shown = shownSecret(secret);
    await this.audit(actor, 'admin.sync_rule.updated', {
      ...auditDetail(updated),
      changed: Object.keys(update),
      ...(shown ? { webhookSecretRotated: true } : {}),
    });
    return this.changeView(updated, shown, baseUrl);
  }

  /** Deletes a rule with its queue and status; images already copied stay. */
  async deleteRule(actor: Actor, name: string): Promise<void> {
    const rule = await this.ruleNamed(name);
    await this.store.rules.delete(rule.id);
    this.sources.forget(rule.id);
    await this.audit(actor, 'admin.sync_rule.deleted', { rule: rule.name });
  }

  /**
   * An on-demand run: the whole rule (a reconcile, which copies only what differs), or one image.
   * Returns when the work is queued; `berth sync run` follows it through the status.
   */
  async requestRun(actor: Actor, name: string, only: { repository: string; tag: string } | undefined, baseUrl: string): Promise<SyncRunView> {
    const rule = await this.ruleNamed(name);
    if (!rule.triggers.onDemand) throw new ApiError('INVALID_REQUEST', `sync rule ${rule.name} does not allow on-demand runs (triggers.onDemand is false)`);
    if (!rule.enabled) throw new ApiError('INVALID_REQUEST', `sync rule ${rule.name} is disabled: enable it first`);
    const now = this.now();
    if (only) {
      if (!repositorySelected(rule.repositories, only.repository)) {
        throw new ApiError('INVALID_REQUEST', `${only.repository} is not selected by sync rule ${rule.name} (repositories: ${rule.repositories.join(', ')})`);
      }
      if (!isValidTag(only.tag) || !tagSelected(rule.tags, only.tag))
        throw new ApiError('INVALID_REQUEST', `tag ${only.tag} is not selected by sync rule ${rule.name}`);
      await this.store.queue.enqueue({ ruleId: rule.id, repository: only.repository, tag: only.tag, digest: null, reason: 'manual' }, now);
    } else {
      await this.store.rules.requestRun(rule.id, now);
    }
    this.worker.nudge();
    const requested = await this.ruleNamed(name);
    await this.audit(actor, 'admin.sync_rule.run', { rule: requested.name, ...(only ?? {}) });
    return { rule: this.view(requested, baseUrl), requestedAt: new Date(now).toISOString(), ...(only ? { image: only } : {}) };
  }

  /** The rule with its queue (the first 100 items) and per-image status. */
  async status(name: string, filter: { repository?: string | undefined; limit: number }, baseUrl: string): Promise<SyncStatusView> {
    const rule = await this.ruleNamed(name);
    const [summary, items, images] = await Promise.all([
      this.store.queue.summary(rule.id),
      this.store.queue.list(rule.id, 100),
      this.store.images.list(rule.id, filter),
    ]);
    return {
      rule: this.view(rule, baseUrl),
      queue: { pending: summary.pending, running: summary.running, failing: summary.failing, items: items.map(itemView) },
      images: images.map((image) => imageView(rule, image)),
    };
  }

  private async ruleNamed(name: string): Promise<SyncRuleRecord> {
    const row = await this.store.rules.findByName(name);
    if (!row) throw new ApiError('SYNC_RULE_UNKNOWN', `no sync rule named ${JSON.stringify(name.slice(0, 64))}`);
    return ruleRecord(row);
  }

  private view(rule: SyncRuleRecord, baseUrl: string): SyncRuleView {
    return ruleView(rule, { now: this.now(), defaultLimits: this.settings.defaultLimits, baseUrl });
  }

  private changeView(rule: SyncRuleRecord, secret: string | undefined, baseUrl: string): SyncRuleChangeView {
    return { rule: this.view(rule, baseUrl), webhook: secret === undefined ? null : { url: webhookUrl(baseUrl, rule.name), secret } };
  }

  private async audit(actor: Actor, event: string, detail: Record<string, unknown>): Promise<void> {
    await this.deps.audit.append({ at: this.now(), event, ...actor, detail });
  }

  // -------------------------------------------------------------------------------------------
  // The webhook receiver

  /** Authenticates, parses and queues one delivery (see the module comment for the answers). */
  async receive(name: string, headers: DeliveryHeaders, body: Buffer): Promise<DeliveryResult> {
    const now = this.now();
    const row = /^[a-z0-9][a-z0-9._-]{0,62}$/.test(name) ? await this.store.rules.findByName(name) : undefined;
    const rule = row && ruleRecord(row);
    const secret = rule?.triggers.webhook && rule.webhookSecret ? rule.webhookSecret : undefined;
    const check = authenticateDelivery(secret ?? this.decoySecret, headers, body, now, this.settings.signatureToleranceSeconds);
    if (!check.ok || secret === undefined || !rule) {
      throw new RegistryError('UNAUTHORIZED', check.ok ? 'the signature does not match' : check.reason);
    }
    const headerId = headers['berth-event-id'];
    let parsed: { envelope: boolean; notifications: Notification[] };
    try {
      parsed = parseNotifications(body, typeof headerId === 'string' && headerId.length <= 256 ? headerId : undefined);
    } catch (err) {
      if (err instanceof MalformedNotification) throw new ApiError('INVALID_REQUEST', `malformed notification: ${err.message}`);
      throw err;
    }
    const { envelope, notifications } = parsed;
    const result: DeliveryResult = { received: notifications.length, queued: 0, duplicates: 0, ignored: 0, rejected: 0, events: [] };
    for (const n of notifications) {
      const outcome = await this.accept(rule, n, now);
      if (outcome.outcome === 'queued' || outcome.outcome === 'updated') result.queued++;
      else if (outcome.outcome === 'duplicate') result.duplicates++;
      else if (outcome.outcome === 'rejected') result.rejected++;
      else if (outcome.outcome === 'ignored') result.ignored++;
      if (result.events.length < maxReportedEvents) result.events.push(outcome);
    }
    if (!envelope && result.rejected > 0) {
      const repository = notifications[0]?.repository ?? '';
      throw new RegistryError('DENIED', `repository ${repository} is not synced by this rule (it accepts ${rule.repositories.join(', ')})`, { repository });
    }
    if (result.queued > 0) this.worker.nudge();
    this.logger.debug({ rule: rule.name, method: check.method, ...result, events: undefined }, 'sync webhook received');
    return result;
  }

  private async accept(rule: SyncRuleRecord, n: Notification, now: number): Promise<SyncEventResult> {
    const base = { repository: n.repository ?? null, tag: n.tag ?? null, digest: n.digest ?? null };
    if (n.problem !== undefined) return { ...base, outcome: 'rejected', reason: `malformed event: ${n.problem}` };
    if (n.action === 'ping') return { ...base, outcome: 'ping' };
    if (!rule.enabled) return { ...base, outcome: 'ignored', reason: 'the rule is disabled' };
    if (n.action !== 'push') return { ...base, outcome: 'ignored', reason: `${n.action} events are not synced (sync copies pushes and never deletes)` };
    const repository = n.repository as string;
    if (!repositorySelected(rule.repositories, repository)) return { ...base, outcome: 'rejected', reason: "the repository is not in the rule's allow-list" };
    if (n.tag === undefined)
      return { ...base, outcome: 'ignored', reason: 'untagged manifest (platform manifests and referrers are copied with their tagged image)' };
    if (!tagSelected(rule.tags, n.tag)) return { ...base, outcome: 'ignored', reason: 'the tag is filtered out by the rule' };
    const item = { ruleId: rule.id, repository, tag: n.tag, digest: n.digest ?? null, reason: 'webhook' as const };
    const queued = n.id !== undefined ? await this.store.receipts.accept(n.id, item, now) : await this.store.queue.enqueue(item, now);
    return { ...base, outcome: queued };
  }

  /**
   * Rule: a source must be one the egress policy lets Berth reach (checked again at every
   * connection), credentials never travel over plain HTTP except to loopback, and file or
   * variable references stay within `secrets.fileDir` / `secrets.envPrefix` (checked again when read).
   */
  private async assertSourceAllowed(spec: SyncRuleSpec): Promise<void> {
    this.secrets.check(spec.source.credentials);
    const url = new URL(spec.source.url);
    if (url.protocol === 'http:' && spec.source.credentials.kind !== 'anonymous' && !isLoopbackHost(url.host)) {
      throw new ApiError(
        'INVALID_REQUEST',
        'source.url: credentials are never sent over plain HTTP; use https:// (plain HTTP only for anonymous sources or loopback)',
      );
    }
    try {
      await this.egress.check(spec.source.url);
    } catch (err) {
      throw new ApiError('EGRESS_REFUSED', `source.url: ${(err as Error).message}`);
    }
  }
}

function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

function shownSecret(change: SecretChange): string | undefined {
  return change.kind === 'set' && change.generated ? change.secret : undefined;
}
