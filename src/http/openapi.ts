/**
 * The OpenAPI 3.1 document of the management API (`GET /api/v1/openapi.json`), generated from the
 * zod schemas the handlers validate with (request bodies and query parameters) and, where a view
 * has one, the schema of its answer. JSON Schema comes from zod-to-json-schema, loaded on the
 * first request for the document (never at start).
 *
 * `operations` is the one list of documented operations; `openapi.test.ts` checks it against the
 * route table both ways (every `/api/v1` route documented, every documented operation routed).
 */
import { z } from 'zod';
import * as views from '../api/view-schemas.js';
import { anonymousPullBody, auditQuerySchema } from '../api/audit.js';
import { logLevelSchema } from '../api/operations.js';
import { federatedCredentialInput } from '../api/federated-credentials.js';
import { tokenTestInput, tokenTestView } from '../api/federation-test.js';
import { createPrincipalBody, grantsBody, secretBody, updatePrincipalBody } from '../api/principals.js';
import { cacheRefreshInput, cacheRuleInput, cacheRuleUpdate } from '../api/cache.js';
import { immutabilityInput, quotaInput, retentionInput } from '../api/lifecycle.js';
import { imageView, repositoryAccessView, repositoryListQuery, repositoryListView, tagListQuery, tagListView } from '../api/repositories.js';
import { ruleInput, ruleUpdate } from '../sync/rule.js';
import { importBody, retryBody } from './handlers/admin/imports.js';
import { runInput } from './handlers/admin/sync.js';
import { createBody as webhookCreateBody, rotateBody as webhookRotateBody, updateBody as webhookUpdateBody } from './handlers/admin/webhooks.js';

type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** Who may call: an owner's token (or session), a repository's pull, any valid token, or anyone. */
type Access = 'owner' | 'pull' | 'catalog' | 'token' | 'public';

export interface Operation {
  method: HttpMethod;
  /** The path as OpenAPI writes it; `{name}` (a repository) may contain `/` and is not percent-encoded. */
  path: string;
  /** The route table entry serving it (`http/routes/`). */
  route: string;
  summary: string;
  tag: string;
  access: Access;
  query?: z.ZodTypeAny;
  /** Query parameters without a schema object: name → description. */
  queryParams?: Record<string, string>;
  body?: z.ZodTypeAny;
  /** The success status, a description, and the answer's schema when it has one. */
  success: { status: number; description: string; schema?: z.ZodTypeAny };
}

const op = (o: Operation) => o;
/** A lifecycle policy's body: the rule of the path's kind. */
const policyBody = z.union([retentionInput, immutabilityInput, quotaInput]);
const v1 = (path: string) => `/api/v1${path}`;

export const operations: readonly Operation[] = [
  // Principals
  op({
    method: 'get',
    path: v1('/principals'),
    route: 'principals',
    summary: 'List principals',
    tag: 'principals',
    access: 'owner',
    queryParams: { kind: 'user, admin, service or token' },
    success: { status: 200, description: '{principals: [PrincipalView]}, sorted by name', schema: z.object({ principals: z.array(views.principalView) }) },
  }),
  op({
    method: 'post',
    path: v1('/principals'),
    route: 'principals',
    summary: 'Create a principal (its first secret is in the answer, once)',
    tag: 'principals',
    access: 'owner',
    body: createPrincipalBody,
    success: { status: 201, description: '{principal, secret: {name, value}}', schema: views.createdPrincipalView },
  }),
  op({
    method: 'get',
    path: v1('/principals/{principal}'),
    route: 'principal',
    summary: 'One principal',
    tag: 'principals',
    access: 'owner',
    success: { status: 200, description: 'PrincipalView', schema: views.principalView },
  }),
  op({
    method: 'patch',
    path: v1('/principals/{principal}'),
    route: 'principal',
    summary: 'Disable, describe or expire a principal',
    tag: 'principals',
    access: 'owner',
    body: updatePrincipalBody,
    success: { status: 200, description: 'PrincipalView', schema: views.principalView },
  }),
  op({
    method: 'delete',
    path: v1('/principals/{principal}'),
    route: 'principal',
    summary: 'Delete a principal',
    tag: 'principals',
    access: 'owner',
    success: { status: 204, description: 'Deleted, with its secrets, grants and refresh tokens' },
  }),
  op({
    method: 'put',
    path: v1('/principals/{principal}/grants'),
    route: 'grants',
    summary: "Replace a principal's grants",
    tag: 'principals',
    access: 'owner',
    body: grantsBody,
    success: { status: 200, description: 'PrincipalView', schema: views.principalView },
  }),
  op({
    method: 'post',
    path: v1('/principals/{principal}/secrets'),
    route: 'secrets',
    summary: 'Set or rotate a secret (its value is in the answer, once)',
    tag: 'principals',
    access: 'owner',
    body: secretBody,
    success: { status: 201, description: '{name, value}', schema: views.issuedSecret },
  }),
  op({
    method: 'delete',
    path: v1('/principals/{principal}/secrets/{secret}'),
    route: 'secret',
    summary: 'Remove a secret',
    tag: 'principals',
    access: 'owner',
    success: { status: 204, description: 'Removed; the refresh tokens it bought are revoked' },
  }),
  // Federated credentials
  op({
    method: 'get',
    path: v1('/principals/{principal}/federated-credentials'),
    route: 'federated-credentials',
    summary: "A service principal's federated credentials",
    tag: 'federation',
    access: 'owner',
    success: {
      status: 200,
      description: '{credentials: [FederatedCredentialView]}',
      schema: z.object({ credentials: z.array(views.federatedCredentialView) }),
    },
  }),
  op({
    method: 'post',
    path: v1('/principals/{principal}/federated-credentials'),
    route: 'federated-credentials',
    summary: 'Add or replace a federated credential (a preset or issuer + audiences + subject)',
    tag: 'federation',
    access: 'owner',
    body: federatedCredentialInput,
    success: { status: 201, description: '{credential, replaced}', schema: views.putFederatedCredentialView },
  }),
  op({
    method: 'delete',
    path: v1('/principals/{principal}/federated-credentials/{credential}'),
    route: 'federated-credential',
    summary: 'Remove a federated credential',
    tag: 'federation',
    access: 'owner',
    success: { status: 204, description: 'Removed; the refresh tokens it bought are revoked' },
  }),
  op({
    method: 'post',
    path: v1('/federated-credentials/test'),
    route: 'federated-credential-test',
    summary: 'Test an OIDC token (or its claims): which credential accepts it, or which check fails',
    tag: 'federation',
    access: 'owner',
    body: tokenTestInput,
    success: { status: 200, description: "The decision and every candidate credential's checks", schema: tokenTestView },
  }),
  // Settings and audit
  op({
    method: 'get',
    path: v1('/settings/anonymous-pull'),
    route: 'anonymous-pull',
    summary: 'Repositories anyone may pull',
    tag: 'settings',
    access: 'owner',
    success: { status: 200, description: '{patterns}', schema: views.anonymousPullView },
  }),
  op({
    method: 'put',
    path: v1('/settings/anonymous-pull'),
    route: 'anonymous-pull',
    summary: 'Replace the anonymous-pull patterns',
    tag: 'settings',
    access: 'owner',
    body: anonymousPullBody,
    success: { status: 200, description: '{patterns}', schema: views.anonymousPullView },
  }),
  op({
    method: 'post',
    path: v1('/keys/rotate'),
    route: 'keys',
    summary: 'Rotate the token signing key',
    tag: 'settings',
    access: 'owner',
    success: { status: 200, description: '{kid}', schema: views.rotatedKeyView },
  }),
  op({
    method: 'get',
    path: v1('/keys'),
    route: 'keys',
    summary: 'List the token signing keys (active, retired, revoked)',
    tag: 'settings',
    access: 'owner',
    success: { status: 200, description: '{keys: [SigningKeyView]}', schema: views.signingKeysView },
  }),
  op({
    method: 'post',
    path: v1('/keys/{kid}/revoke'),
    route: 'key-revoke',
    summary: 'Revoke a token signing key at once (tokens it signed are refused)',
    tag: 'settings',
    access: 'owner',
    success: { status: 200, description: '{kid, signingKid}', schema: views.revokedKeyView },
  }),
  op({
    method: 'get',
    path: v1('/audit'),
    route: 'audit',
    summary: 'The audit log, newest first',
    tag: 'settings',
    access: 'owner',
    query: auditQuerySchema,
    success: { status: 200, description: '{entries: [AuditEntryView], next}', schema: views.auditPageView },
  }),
  op({
    method: 'get',
    path: v1('/settings/log-level'),
    route: 'log-level',
    summary: "This replica's log level",
    tag: 'settings',
    access: 'owner',
    success: { status: 200, description: '{level}', schema: views.logLevelView },
  }),
  op({
    method: 'put',
    path: v1('/settings/log-level'),
    route: 'log-level',
    summary: "Change this replica's log level until the next change or restart",
    tag: 'settings',
    access: 'owner',
    body: logLevelSchema,
    success: { status: 200, description: '{level, previous}', schema: views.logLevelView },
  }),
  // Webhooks
  op({
    method: 'get',
    path: v1('/webhooks'),
    route: 'webhooks',
    summary: 'List webhooks',
    tag: 'webhooks',
    access: 'owner',
    success: { status: 200, description: '{webhooks: [WebhookView]}', schema: z.object({ webhooks: z.array(views.webhookView) }) },
  }),
  op({
    method: 'post',
    path: v1('/webhooks'),
    route: 'webhooks',
    summary: 'Create a webhook (its signing secret is in the answer, once)',
    tag: 'webhooks',
    access: 'owner',
    body: webhookCreateBody,
    success: { status: 201, description: '{webhook, secret}', schema: views.webhookWithSecretView },
  }),
  op({
    method: 'get',
    path: v1('/webhooks/{webhook}'),
    route: 'webhook',
    summary: 'One webhook',
    tag: 'webhooks',
    access: 'owner',
    success: { status: 200, description: 'WebhookView', schema: views.webhookView },
  }),
  op({
    method: 'patch',
    path: v1('/webhooks/{webhook}'),
    route: 'webhook',
    summary: 'Change a webhook',
    tag: 'webhooks',
    access: 'owner',
    body: webhookUpdateBody,
    success: { status: 200, description: 'WebhookView', schema: views.webhookView },
  }),
  op({
    method: 'delete',
    path: v1('/webhooks/{webhook}'),
    route: 'webhook',
    summary: 'Delete a webhook and its deliveries',
    tag: 'webhooks',
    access: 'owner',
    success: { status: 204, description: 'Deleted' },
  }),
  op({
    method: 'post',
    path: v1('/webhooks/{webhook}/secret'),
    route: 'webhook-secret',
    summary: 'Rotate the signing secret',
    tag: 'webhooks',
    access: 'owner',
    body: webhookRotateBody,
    success: { status: 200, description: '{webhook, secret}', schema: views.webhookWithSecretView },
  }),
  op({
    method: 'post',
    path: v1('/webhooks/{webhook}/ping'),
    route: 'webhook-ping',
    summary: 'Send a ping event',
    tag: 'webhooks',
    access: 'owner',
    success: { status: 202, description: '{delivery}', schema: views.deliveryQueuedView },
  }),
  op({
    method: 'get',
    path: v1('/webhooks/{webhook}/deliveries'),
    route: 'webhook-deliveries',
    summary: 'Deliveries, newest first, each with its last attempt',
    tag: 'webhooks',
    access: 'owner',
    queryParams: { status: 'pending, delivered or failed', limit: '1-500 (default 50)' },
    success: { status: 200, description: '{deliveries: [DeliveryView]}', schema: z.object({ deliveries: z.array(views.deliveryView) }) },
  }),
  op({
    method: 'get',
    path: v1('/webhooks/{webhook}/deliveries/{delivery}'),
    route: 'webhook-delivery',
    summary: 'One delivery with every attempt and its payload',
    tag: 'webhooks',
    access: 'owner',
    success: { status: 200, description: 'DeliveryDetailView', schema: views.deliveryDetailView },
  }),
  op({
    method: 'post',
    path: v1('/webhooks/{webhook}/deliveries/{delivery}/redeliver'),
    route: 'webhook-redeliver',
    summary: 'Deliver again (a new cycle of attempts, same event id)',
    tag: 'webhooks',
    access: 'owner',
    success: { status: 202, description: '{delivery}', schema: views.deliveryQueuedView },
  }),
  // Sync
  op({
    method: 'get',
    path: v1('/sync/rules'),
    route: 'sync-rules',
    summary: 'List sync rules',
    tag: 'sync',
    access: 'owner',
    success: { status: 200, description: '{rules: [SyncRuleView]}' },
  }),
  op({
    method: 'post',
    path: v1('/sync/rules'),
    route: 'sync-rules',
    summary: 'Create a sync rule',
    tag: 'sync',
    access: 'owner',
    body: ruleInput,
    success: { status: 201, description: '{rule, webhook}' },
  }),
  op({
    method: 'get',
    path: v1('/sync/rules/{rule}'),
    route: 'sync-rule',
    summary: 'One sync rule',
    tag: 'sync',
    access: 'owner',
    success: { status: 200, description: 'SyncRuleView' },
  }),
  op({
    method: 'patch',
    path: v1('/sync/rules/{rule}'),
    route: 'sync-rule',
    summary: 'Change a sync rule',
    tag: 'sync',
    access: 'owner',
    body: ruleUpdate,
    success: { status: 200, description: '{rule, webhook}' },
  }),
  op({
    method: 'delete',
    path: v1('/sync/rules/{rule}'),
    route: 'sync-rule',
    summary: 'Delete a sync rule',
    tag: 'sync',
    access: 'owner',
    success: { status: 204, description: 'Deleted; copied images stay' },
  }),
  op({
    method: 'post',
    path: v1('/sync/rules/{rule}/run'),
    route: 'sync-run',
    summary: 'Run a rule now (or one image)',
    tag: 'sync',
    access: 'owner',
    body: runInput,
    success: { status: 202, description: '{rule, requestedAt}' },
  }),
  op({
    method: 'get',
    path: v1('/sync/rules/{rule}/status'),
    route: 'sync-status',
    summary: 'Per-image status and the queue',
    tag: 'sync',
    access: 'owner',
    queryParams: { repository: 'one source repository', limit: '1-10000 (default 1000)' },
    success: { status: 200, description: '{rule, queue, images}' },
  }),
  op({
    method: 'post',
    path: v1('/sync/rules/{rule}/webhook'),
    route: 'sync-webhook',
    summary: "Receive another registry's push notifications (authenticated by the rule's secret)",
    tag: 'sync',
    access: 'public',
    success: { status: 202, description: '{received, queued, duplicates, ignored, rejected, events}' },
  }),
  // Import
  op({
    method: 'post',
    path: v1('/import'),
    route: 'import',
    summary: 'Import an image from another registry',
    tag: 'import',
    access: 'token',
    body: importBody,
    success: { status: 202, description: 'ImportJobView', schema: views.importJobView },
  }),
  op({
    method: 'get',
    path: v1('/imports'),
    route: 'imports',
    summary: 'Import jobs, newest first (owners see all, others their own)',
    tag: 'import',
    access: 'token',
    queryParams: { status: 'queued, running, succeeded or failed', limit: '1-1000 (default 100)' },
    success: { status: 200, description: '{imports: [ImportJobView]}', schema: z.object({ imports: z.array(views.importJobView) }) },
  }),
  op({
    method: 'get',
    path: v1('/imports/{id}'),
    route: 'import-job',
    summary: 'One import job with its progress',
    tag: 'import',
    access: 'token',
    success: { status: 200, description: 'ImportJobView', schema: views.importJobView },
  }),
  op({
    method: 'post',
    path: v1('/imports/{id}/retry'),
    route: 'import-retry',
    summary: 'Run a failed import again (it resumes)',
    tag: 'import',
    access: 'token',
    body: retryBody,
    success: { status: 202, description: 'ImportJobView', schema: views.importJobView },
  }),
  // Repositories
  op({
    method: 'get',
    path: v1('/repositories'),
    route: 'repositories',
    summary: 'Repositories the caller may pull, with a name search',
    tag: 'repositories',
    access: 'catalog',
    query: repositoryListQuery,
    success: { status: 200, description: 'A page of names', schema: repositoryListView },
  }),
  op({
    method: 'get',
    path: v1('/repositories/{name}/tags'),
    route: 'repository-tags',
    summary: 'Tags with digest, media type, sizes per platform and in total, and the last push',
    tag: 'repositories',
    access: 'pull',
    query: tagListQuery,
    success: { status: 200, description: 'A page of tags', schema: tagListView },
  }),
  op({
    method: 'get',
    path: v1('/repositories/{name}/images/{digest}'),
    route: 'repository-image',
    summary: 'One manifest taken apart: platforms, config, layers, annotations, referrers',
    tag: 'repositories',
    access: 'pull',
    success: { status: 200, description: 'The image', schema: imageView },
  }),
  // The pull-through cache (docs/cache.md) and lifecycle policies (docs/lifecycle.md); their answers are described there.
  op({
    method: 'get',
    path: v1('/cache/rules'),
    route: 'cache-rules',
    summary: 'List pull-through cache rules (configuration-file rules included, read-only)',
    tag: 'cache',
    access: 'owner',
    success: { status: 200, description: '{rules: [CacheRuleView]}' },
  }),
  op({
    method: 'post',
    path: v1('/cache/rules'),
    route: 'cache-rules',
    summary: 'Create a pull-through cache rule',
    tag: 'cache',
    access: 'owner',
    body: cacheRuleInput,
    success: { status: 201, description: '{rule: CacheRuleView}' },
  }),
  op({
    method: 'get',
    path: v1('/cache/rules/{rule}'),
    route: 'cache-rule',
    summary: 'One cache rule with its upstream state',
    tag: 'cache',
    access: 'owner',
    success: { status: 200, description: 'CacheRuleView' },
  }),
  op({
    method: 'patch',
    path: v1('/cache/rules/{rule}'),
    route: 'cache-rule',
    summary: 'Change a cache rule made through the API',
    tag: 'cache',
    access: 'owner',
    body: cacheRuleUpdate,
    success: { status: 200, description: 'CacheRuleView' },
  }),
  op({
    method: 'delete',
    path: v1('/cache/rules/{rule}'),
    route: 'cache-rule',
    summary: 'Delete a cache rule made through the API (what it cached stays)',
    tag: 'cache',
    access: 'owner',
    success: { status: 204, description: 'no content' },
  }),
  op({
    method: 'post',
    path: v1('/cache/rules/{rule}/refresh'),
    route: 'cache-refresh',
    summary: 'Re-check cached tags with the upstream now, or at their next pull',
    tag: 'cache',
    access: 'owner',
    body: cacheRefreshInput,
    success: { status: 200, description: 'CacheRefreshView' },
  }),
  op({
    method: 'get',
    path: v1('/cache/rules/{rule}/entries'),
    route: 'cache-entries',
    summary: "The rule's cached tags and how fresh they are",
    tag: 'cache',
    access: 'owner',
    queryParams: { repository: 'only this repository', limit: '1-1000' },
    success: { status: 200, description: 'CacheEntriesView' },
  }),
  op({
    method: 'get',
    path: v1('/lifecycle/policies'),
    route: 'lifecycle-policies',
    summary: 'Every lifecycle policy, by kind (retention, immutability, quotas)',
    tag: 'lifecycle',
    access: 'owner',
    success: { status: 200, description: 'PoliciesView' },
  }),
  op({
    method: 'get',
    path: v1('/lifecycle/{kind}/{policy}'),
    route: 'lifecycle-policy',
    summary: 'One lifecycle policy',
    tag: 'lifecycle',
    access: 'owner',
    success: { status: 200, description: 'PolicyView' },
  }),
  op({
    method: 'put',
    path: v1('/lifecycle/{kind}/{policy}'),
    route: 'lifecycle-policy',
    summary: 'Create or replace a lifecycle policy (the body is the rule of its kind)',
    tag: 'lifecycle',
    access: 'owner',
    body: policyBody,
    success: { status: 200, description: 'PolicyChangeView' },
  }),
  op({
    method: 'delete',
    path: v1('/lifecycle/{kind}/{policy}'),
    route: 'lifecycle-policy',
    summary: 'Delete a lifecycle policy',
    tag: 'lifecycle',
    access: 'owner',
    success: { status: 204, description: 'no content' },
  }),
  op({
    method: 'post',
    path: v1('/lifecycle/retention/preview'),
    route: 'retention-preview',
    summary: 'What an unsaved retention rule would delete now, and why',
    tag: 'lifecycle',
    access: 'owner',
    body: retentionInput,
    success: { status: 200, description: 'the preview: actions and what is kept' },
  }),
  op({
    method: 'post',
    path: v1('/lifecycle/retention/{policy}/preview'),
    route: 'retention-rule-preview',
    summary: 'What a saved retention rule would delete now, and why',
    tag: 'lifecycle',
    access: 'owner',
    success: { status: 200, description: 'the preview: actions and what is kept' },
  }),
  op({
    method: 'post',
    path: v1('/lifecycle/retention/{policy}/run'),
    route: 'retention-rule-run',
    summary: 'Run a retention rule now (dry-run or enforce, as the rule says)',
    tag: 'lifecycle',
    access: 'owner',
    success: { status: 202, description: 'the queued run' },
  }),
  op({
    method: 'get',
    path: v1('/lifecycle/runs'),
    route: 'lifecycle-runs',
    summary: 'Lifecycle runs, newest first',
    tag: 'lifecycle',
    access: 'owner',
    queryParams: { policy: 'a policy name', limit: '1-1000' },
    success: { status: 200, description: '{runs}' },
  }),
  op({
    method: 'get',
    path: v1('/lifecycle/runs/{id}'),
    route: 'lifecycle-run',
    summary: 'One run with its actions (paged)',
    tag: 'lifecycle',
    access: 'owner',
    queryParams: { after: 'the last action id seen', limit: '1-1000' },
    success: { status: 200, description: 'the run and its actions' },
  }),
  op({
    method: 'get',
    path: v1('/lifecycle/usage'),
    route: 'lifecycle-usage',
    summary: 'Storage usage per repository (logical and exclusive bytes) and per quota',
    tag: 'lifecycle',
    access: 'owner',
    queryParams: { pattern: 'a repository pattern', n: 'page size', last: 'the last repository of the previous page' },
    success: { status: 200, description: 'usage' },
  }),
  op({
    method: 'post',
    path: v1('/lifecycle/usage/refresh'),
    route: 'lifecycle-usage-refresh',
    summary: 'Recompute storage usage now',
    tag: 'lifecycle',
    access: 'owner',
    success: { status: 202, description: 'the queued run' },
  }),
  // Push attestations (docs/attestations.md)
  op({
    method: 'get',
    path: v1('/attestations/keys'),
    route: 'attestation-keys',
    summary: 'Every key the registry signed push attestations with, newest first (public keys)',
    tag: 'attestations',
    access: 'public',
    success: { status: 200, description: '{keys: [AttestationKeyView]}', schema: views.attestationKeysView },
  }),
  op({
    method: 'get',
    path: v1('/attestations/keys/{hint}.pem'),
    route: 'attestation-key',
    summary: 'One attestation public key as PEM (`current` for the active one), for cosign, Kyverno, policy-controller',
    tag: 'attestations',
    access: 'public',
    success: { status: 200, description: 'a SubjectPublicKeyInfo PEM (application/x-pem-file)', schema: z.string() },
  }),
  op({
    method: 'get',
    path: v1('/attestations/required'),
    route: 'attestation-requirement',
    summary: 'Whether pulls from a repository need a satisfying attestation',
    tag: 'attestations',
    access: 'public',
    queryParams: { repository: 'the repository name' },
    success: { status: 200, description: '{repository, required, rules}', schema: views.attestationRequirementView },
  }),
  op({
    method: 'post',
    path: v1('/attestations/keys/rotate'),
    route: 'attestation-keys-rotate',
    summary: 'Start signing push attestations with a new key',
    tag: 'attestations',
    access: 'owner',
    success: { status: 200, description: '{hint}', schema: views.rotatedAttestationKeyView },
  }),
  op({
    method: 'get',
    path: v1('/repositories/{name}/attestations'),
    route: 'image-attestations',
    summary: "An image's attestations, verified, and what the pull rules decide for it",
    tag: 'attestations',
    access: 'pull',
    queryParams: { tag: 'a tag', digest: 'a manifest digest' },
    success: { status: 200, description: '{repository, digest, attestations, pull}', schema: views.imageAttestationsView },
  }),
  op({
    method: 'get',
    path: v1('/repositories/{name}/history'),
    route: 'history',
    summary: 'Who pushed what, newest first, with push provenance',
    tag: 'repositories',
    access: 'pull',
    queryParams: { tag: 'one tag', digest: 'one digest', limit: '1-1000 (default 100)' },
    success: { status: 200, description: '{repository, pushes: [PushView]}', schema: views.historyView },
  }),
  op({
    method: 'get',
    path: v1('/repositories/{name}/access'),
    route: 'repository-access',
    summary: 'Who can pull, push or delete here: principals, grants, federated credentials',
    tag: 'repositories',
    access: 'owner',
    success: { status: 200, description: 'The principals reaching the repository', schema: repositoryAccessView },
  }),
  op({
    method: 'get',
    path: v1('/openapi.json'),
    route: 'openapi',
    summary: 'This document',
    tag: 'meta',
    access: 'public',
    success: { status: 200, description: 'OpenAPI 3.1' },
  }),
];

const accessText: Record<Access, string> = {
  owner: "Owners: a token holding `registry:admin:*`, or an owner's console session.",
  pull: 'Pull on the repository (a token with `repository:<name>:pull`, a console session whose grants allow it, or anonymous pull).',
  catalog: 'A token with `registry:catalog:*` (or a console session); answers list only what the caller may pull.',
  token: 'Any valid access token or console session; the rules are in the operation.',
  public: 'No token.',
};

const errorSchema = {
  type: 'object',
  properties: {
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { code: { type: 'string' }, message: { type: 'string' }, detail: {} },
        required: ['code', 'message'],
      },
    },
  },
  required: ['errors'],
};

/** The document, generated on first use. */
export async function openApiDocument(version: string): Promise<Record<string, unknown>> {
  const { zodToJsonSchema } = await import('zod-to-json-schema');
  const toSchema = (schema: z.ZodTypeAny): Record<string, unknown> => {
    const converted = zodToJsonSchema(schema, { target: 'jsonSchema2019-09', $refStrategy: 'none', effectStrategy: 'input' }) as Record<string, unknown>;
    delete converted['$schema'];
    return converted;
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const o of operations) {
    const parameters: unknown[] = [...o.path.matchAll(/\{(\w+)\}/g)].map(([, param]) => ({
      name: param,
      in: 'path',
      required: true,
      schema: { type: 'string' },
      ...(param === 'name' ? { description: 'A repository name; it may contain `/`, which is not percent-encoded' } : {}),
    }));
    if (o.query) {
      const schema = toSchema(o.query) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
      for (const [param, property] of Object.entries(schema.properties ?? {})) {
        const { description, ...rest } = property;
        parameters.push({
          name: param,
          in: 'query',
          required: schema.required?.includes(param) ?? false,
          schema: rest,
          ...(description ? { description } : {}),
        });
      }
    }
    for (const [param, description] of Object.entries(o.queryParams ?? {})) {
      parameters.push({ name: param, in: 'query', required: false, schema: { type: 'string' }, description });
    }
    const success: Record<string, unknown> = { description: o.success.description };
    if (o.success.status !== 204) success['content'] = { 'application/json': { schema: o.success.schema ? toSchema(o.success.schema) : { type: 'object' } } };
    (paths[o.path] ??= {})[o.method] = {
      operationId: `${o.method}-${o.route}`,
      summary: o.summary,
      description: accessText[o.access],
      tags: [o.tag],
      parameters,
      ...(o.body ? { requestBody: { required: true, content: { 'application/json': { schema: toSchema(o.body) } } } } : {}),
      responses: {
        [String(o.success.status)]: success,
        default: { description: 'An error: `{errors: [{code, message, detail}]}`', content: { 'application/json': { schema: errorSchema } } },
      },
      ...(o.access === 'public' ? { security: [] } : {}),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Berth management API',
      version,
      description:
        'The management API of Berth (`/api/v1`). Request schemas are the ones the server validates with. Errors are `{errors: [{code, message, detail}]}` with registry error codes.',
    },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token from /oauth2/token' },
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: 'berth_session',
          description: 'A web console session; state-changing requests also need the X-Berth-CSRF header',
        },
      },
    },
    security: [{ bearer: [] }, { session: [] }],
    paths,
  };
}
