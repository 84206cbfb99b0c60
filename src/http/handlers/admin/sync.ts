/**
 * /api/v1/sync/rules: selective sync from another registry (docs/sync.md).
 *
 * Owner endpoints: CRUD on rules, `POST …/run` (on demand) and `GET …/status` (per image). The
 * receiver, `POST …/{rule}/webhook`, is a `public` route: senders (another Berth, ACR, CNCF
 * Distribution) authenticate with the rule's secret, by `Berth-Signature` HMAC or as a bearer
 * token, and the answers are decided in `SyncService.receive`.
 *
 * Secrets: a webhook secret Berth generates is in the one response that created (or rotated) it;
 * rule views never carry secrets or inline passwords, only where a password comes from.
 */
import { z } from 'zod';
import { urls } from '../../../api/urls.js';
import type { SyncImageStatus, SyncRuleRecord, SyncWorkItem, ReconcileStats } from '../../../metadata/sync-store.js';
import { RegistryError } from '../../../oci/errors.js';
import { isValidRepositoryName, isValidTag } from '../../../oci/names.js';
import type { DeliveryResult } from '../../../sync/service.js';
import { ruleInput, ruleUpdate } from '../../../sync/rule.js';
import { baseUrl } from '../../authorize.js';
import { readBoundedBody } from '../../request.js';
import { send, sendJson } from '../../respond.js';
import type { RouteContext } from '../../routes.js';
import { actingOwner, audit, pathParam, readJson } from './common.js';

export type SourceCredentialsView =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; passwordSource: 'stored' | 'file' | 'env'; passwordFile: string | null; passwordEnv: string | null }
  | { kind: 'oidc'; clientId: string; tokenFile: string };

export interface SyncRuleView {
  name: string;
  enabled: boolean;
  source: { url: string; credentials: SourceCredentialsView };
  repositories: string[];
  tags: { include: string[]; exclude: string[] };
  destinationPrefix: string;
  /** `webhook.url` is where senders deliver; null without the webhook trigger. */
  triggers: { webhook: { url: string } | null; pollIntervalMs: number | null; onDemand: boolean };
  /** The effective per-source limits (the rule's, else `sync.defaultLimits`). */
  limits: { requestsPerSecond: number; concurrency: number };
  includeReferrers: boolean;
  createdAt: string;
  updatedAt: string;
  state: {
    /** The next scheduled reconcile; null for rules that run only on demand (or by webhook without a safety net). */
    nextReconcileAt: string | null;
    runRequestedAt: string | null;
    reconciling: boolean;
    lastReconcileStartedAt: string | null;
    lastReconcileAt: string | null;
    lastReconcileError: string | null;
    lastReconcileStats: ReconcileStats | null;
    /** When the first complete reconcile finished: everything that existed at the source then is queued or copied. */
    backfilledAt: string | null;
    lastSyncAt: string | null;
    lastError: string | null;
    lastErrorAt: string | null;
  };
}

export interface SyncImageView {
  /** The source repository, and where it lands here. */
  repository: string;
  destination: string;
  tag: string;
  sourceDigest: string | null;
  digest: string | null;
  lastCheckedAt: string | null;
  lastSyncAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  copies: number;
}

export interface SyncQueueItemView {
  repository: string;
  tag: string;
  digest: string | null;
  reason: string;
  enqueuedAt: string;
  notBefore: string;
  attempts: number;
  lastError: string | null;
}

export interface SyncStatusView {
  rule: SyncRuleView;
  queue: { pending: number; running: number; failing: number; items: SyncQueueItemView[] };
  images: SyncImageView[];
}

/** In the response that created or rotated it only. */
export interface WebhookSecretView {
  url: string;
  secret: string;
}

export type { DeliveryResult };

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function ruleView(ctx: RouteContext, rule: SyncRuleRecord): SyncRuleView {
  const sync = ctx.services.sync;
  const c = rule.source.credentials;
  const credentials: SourceCredentialsView =
    c.kind === 'basic'
      ? {
          kind: 'basic',
          username: c.username,
          passwordSource: c.passwordFile !== undefined ? 'file' : c.passwordEnv !== undefined ? 'env' : 'stored',
          passwordFile: c.passwordFile ?? null,
          passwordEnv: c.passwordEnv ?? null,
        }
      : c;
  const now = ctx.registry.context.clock.now();
  return {
    name: rule.name,
    enabled: rule.enabled,
    source: { url: rule.source.url, credentials },
    repositories: rule.repositories,
    tags: rule.tags,
    destinationPrefix: rule.destinationPrefix,
    triggers: {
      webhook: rule.triggers.webhook ? { url: webhookUrl(ctx, rule.name) } : null,
      pollIntervalMs: rule.triggers.pollIntervalMs,
      onDemand: rule.triggers.onDemand,
    },
    limits: {
      requestsPerSecond: rule.limits.requestsPerSecond ?? sync.settings.defaultLimits.requestsPerSecond,
      concurrency: rule.limits.concurrency ?? sync.settings.defaultLimits.concurrency,
    },
    includeReferrers: rule.includeReferrers,
    createdAt: new Date(rule.createdAt).toISOString(),
    updatedAt: new Date(rule.updatedAt).toISOString(),
    state: {
      nextReconcileAt: iso(rule.state.nextReconcileAt),
      runRequestedAt: iso(rule.state.runRequestedAt),
      reconciling: rule.state.reconcileLeaseUntil !== null && rule.state.reconcileLeaseUntil > now,
      lastReconcileStartedAt: iso(rule.state.lastReconcileStartedAt),
      lastReconcileAt: iso(rule.state.lastReconcileAt),
      lastReconcileError: rule.state.lastReconcileError,
      lastReconcileStats: rule.state.lastReconcileStats,
      backfilledAt: iso(rule.state.backfilledAt),
      lastSyncAt: iso(rule.state.lastSyncAt),
      lastError: rule.state.lastError,
      lastErrorAt: iso(rule.state.lastErrorAt),
    },
  };
}

function imageView(rule: SyncRuleRecord, image: SyncImageStatus): SyncImageView {
  return {
    repository: image.repository,
    destination: `${rule.destinationPrefix}${image.repository}`,
    tag: image.tag,
    sourceDigest: image.sourceDigest,
    digest: image.digest,
    lastCheckedAt: iso(image.lastCheckedAt),
    lastSyncAt: iso(image.lastSyncAt),
    lastError: image.lastError,
    lastErrorAt: iso(image.lastErrorAt),
    copies: image.copies,
  };
}

function itemView(item: SyncWorkItem): SyncQueueItemView {
  return {
    repository: item.repository,
    tag: item.tag,
    digest: item.digest,
    reason: item.reason,
    enqueuedAt: new Date(item.enqueuedAt).toISOString(),
    notBefore: new Date(item.notBefore).toISOString(),
    attempts: item.attempts,
    lastError: item.lastError,
  };
}

function webhookUrl(ctx: RouteContext, name: string): string {
  return `${baseUrl(ctx.req, ctx.auth)}${urls.api.syncWebhook(name)}`;
}

/** What the audit log keeps of a rule: never a secret or an inline password. */
function auditDetail(rule: SyncRuleRecord): Record<string, unknown> {
  return {
    rule: rule.name,
    source: rule.source.url,
    credentials: rule.source.credentials.kind,
    repositories: rule.repositories,
    destinationPrefix: rule.destinationPrefix,
    enabled: rule.enabled,
  };
}

// ---------------------------------------------------------------------------------------------
// Owner endpoints

/** GET /sync/rules → {rules: [view]}, sorted by name. */
export async function list(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const rules = await ctx.services.sync.listRules();
  sendJson(ctx.res, 200, { rules: rules.map((r) => ruleView(ctx, r)) });
}

/** POST /sync/rules → 201 {rule, webhook: {url, secret} | null} (the secret only when Berth generated it). */
export async function create(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const body = await readJson(ctx, ruleInput);
  const { rule, webhookSecret } = await ctx.services.sync.createRule(body);
  await audit(ctx, actor, 'admin.sync_rule.created', auditDetail(rule));
  sendJson(ctx.res, 201, { rule: ruleView(ctx, rule), webhook: secretView(ctx, rule, webhookSecret) });
}

/** GET /sync/rules/{rule} → view. */
export async function get(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const rule = await ctx.services.sync.getRule(pathParam(ctx, 'rule'));
  sendJson(ctx.res, 200, ruleView(ctx, rule));
}

/** PATCH /sync/rules/{rule} → 200 {rule, webhook: {url, secret} | null}; objects merge one level deep. */
export async function update(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const name = pathParam(ctx, 'rule');
  const body = await readJson(ctx, ruleUpdate);
  const { rule, webhookSecret } = await ctx.services.sync.updateRule(name, body);
  await audit(ctx, actor, 'admin.sync_rule.updated', {
    ...auditDetail(rule),
    changed: Object.keys(body),
    ...(webhookSecret ? { webhookSecretRotated: true } : {}),
  });
  sendJson(ctx.res, 200, { rule: ruleView(ctx, rule), webhook: secretView(ctx, rule, webhookSecret) });
}

/** DELETE /sync/rules/{rule} → 204; its queue and status go with it. Images already copied stay. */
export async function remove(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const rule = await ctx.services.sync.deleteRule(pathParam(ctx, 'rule'));
  await audit(ctx, actor, 'admin.sync_rule.deleted', { rule: rule.name });
  send(ctx.res, 204, {});
}

const runInput = z
  .object({
    repository: z.string().refine(isValidRepositoryName, 'not a valid repository name').optional(),
    tag: z.string().refine(isValidTag, 'not a valid tag').optional(),
  })
  .strict()
  .refine((b) => (b.repository === undefined) === (b.tag === undefined), 'give repository and tag together (one image), or neither (the whole rule)');

/** POST /sync/rules/{rule}/run {repository?, tag?} → 202 {rule, requestedAt}: queued, followed through the status. */
export async function run(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const body = await readJson(ctx, runInput);
  const only = body.repository !== undefined && body.tag !== undefined ? { repository: body.repository, tag: body.tag } : undefined;
  const { rule, requestedAt } = await ctx.services.sync.requestRun(pathParam(ctx, 'rule'), only);
  await audit(ctx, actor, 'admin.sync_rule.run', { rule: rule.name, ...(only ?? {}) });
  sendJson(ctx.res, 202, { rule: ruleView(ctx, rule), requestedAt: new Date(requestedAt).toISOString(), ...(only ? { image: only } : {}) });
}

const defaultImages = 1000;
const maxImages = 10_000;

/** GET /sync/rules/{rule}/status?repository=&limit= → {rule, queue, images}. */
export async function status(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const repository = ctx.query.get('repository') || undefined;
  if (repository !== undefined && !isValidRepositoryName(repository)) throw new RegistryError('INVALID_REQUEST', 'repository: not a valid repository name');
  const rawLimit = ctx.query.get('limit');
  const limit = rawLimit ? Number(rawLimit) : defaultImages;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxImages)
    throw new RegistryError('INVALID_REQUEST', `limit must be an integer from 1 to ${maxImages}`);
  const found = await ctx.services.sync.status(pathParam(ctx, 'rule'), { repository, limit });
  const body: SyncStatusView = {
    rule: ruleView(ctx, found.rule),
    queue: { pending: found.queue.pending, running: found.queue.running, failing: found.queue.failing, items: found.queue.items.map(itemView) },
    images: found.images.map((image) => imageView(found.rule, image)),
  };
  sendJson(ctx.res, 200, body);
}

function secretView(ctx: RouteContext, rule: SyncRuleRecord, secret: string | undefined): WebhookSecretView | null {
  return secret === undefined ? null : { url: webhookUrl(ctx, rule.name), secret };
}

// ---------------------------------------------------------------------------------------------
// The receiver (public route)

/**
 * POST /sync/rules/{rule}/webhook: 202 {received, queued, duplicates, ignored, rejected, events}
 * at once; 401 for an unknown rule or a bad signature/secret (alike), 400 for a malformed body,
 * 403 for a one-event delivery outside the rule's repositories, 413 for an oversized body.
 */
export async function webhook(ctx: RouteContext): Promise<void> {
  const sync = ctx.services.sync;
  const limit = sync.settings.receiverMaxBodyBytes;
  const body = await readBoundedBody(ctx.req, limit, () => new RegistryError('REQUEST_TOO_LARGE', `a delivery is at most ${limit} bytes`, { limit }));
  const result = await sync.receive(ctx.params['rule'] ?? '', ctx.req.headers, body);
  sendJson(ctx.res, 202, result);
}
