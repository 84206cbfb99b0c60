/**
 * The answers of the older `/api/v1` operations as zod schemas, for the OpenAPI document
 * (`http/openapi.ts`). The views themselves are the TypeScript interfaces beside their API
 * (`principals.ts`, `webhooks.ts`, …); the `conforms` lines below fail to compile when a view
 * gains or changes a field its schema does not describe, so the document cannot drift from them.
 */
import { z } from 'zod';
import type { AttestationKeysView, AttestationRequirementView, ImageAttestationsView, RotatedAttestationKeyView } from './attestations.js';
import type { AnonymousPullView, AuditEntryView, AuditPageView, RevokedKeyView, RotatedKeyView, SigningKeyView } from './audit.js';
import { logLevelNames, type LogLevelView } from './operations.js';
import type { ImportJobView } from './imports.js';
import type { CreatedPrincipalView, FederatedCredentialView, IssuedSecret, PrincipalView, PutFederatedCredentialView } from './principals.js';
import type { HistoryView } from './repositories.js';
import type { DeliveryDetailView, DeliveryQueuedView, DeliveryView, WebhookView, WebhookWithSecretView } from './webhooks.js';

const time = z.string().describe('ISO 8601 date-time');
const condition = z.object({ claim: z.string(), equals: z.string().optional(), glob: z.string().optional(), oneOf: z.array(z.string()).optional() });

export const federatedCredentialView = z.object({
  name: z.string(),
  issuer: z.string(),
  audiences: z.array(z.string()),
  subject: z.string(),
  conditions: z.array(condition),
  createdAt: time,
});

export const principalView = z.object({
  id: z.string(),
  kind: z.enum(['user', 'admin', 'service', 'token']),
  name: z.string(),
  description: z.string().nullable(),
  disabled: z.boolean(),
  expiresAt: time.nullable(),
  createdAt: time,
  grants: z.array(z.object({ pattern: z.string(), permission: z.string() })),
  secrets: z.array(z.object({ name: z.string(), expiresAt: time.nullable(), createdAt: time })),
  federatedCredentials: z.array(federatedCredentialView),
});

export const issuedSecret = z.object({ name: z.string(), value: z.string().describe('Shown once') });
export const createdPrincipalView = z.object({ principal: principalView, secret: issuedSecret });
export const putFederatedCredentialView = z.object({ credential: federatedCredentialView, replaced: z.boolean() });
export const anonymousPullView = z.object({ patterns: z.array(z.string()) });
export const rotatedKeyView = z.object({ kid: z.string() });
export const auditEntryView = z.object({
  id: z.number().int(),
  at: time,
  event: z.string(),
  principalId: z.string().nullable(),
  principalName: z.string().nullable(),
  clientAddress: z.string().nullable(),
  repository: z.string().nullable().describe('The repository the entry is about (pushes, pulls, deletes)'),
  detail: z.unknown(),
});
export const auditPageView = z.object({
  entries: z.array(auditEntryView),
  next: z.number().int().nullable().describe('The `before` of the next page; null on the last'),
});
export const logLevelView = z.object({ level: z.enum(logLevelNames), previous: z.enum(logLevelNames).optional() });

export const webhookView = z.object({
  id: z.string(),
  name: z.string(),
  url: z.string().describe('Password and query values redacted'),
  events: z.array(z.enum(['push', 'delete', 'ping', 'quota_warning', 'quota_exceeded'])),
  filters: z.array(z.string()),
  headers: z.record(z.string()).describe('Values redacted'),
  format: z.enum(['acr', 'cloudevents']),
  enabled: z.boolean(),
  previousSecretUntil: time.nullable(),
  createdAt: time,
  updatedAt: time,
});
const attemptView = z.object({
  cycle: z.number().int(),
  attempt: z.number().int(),
  at: time,
  ok: z.boolean(),
  statusCode: z.number().int().nullable(),
  error: z.string().nullable(),
  latencyMs: z.number(),
  responseSnippet: z.string().nullable(),
});
export const deliveryView = z.object({
  id: z.string(),
  eventId: z.string(),
  action: z.enum(['push', 'delete', 'ping', 'quota_warning', 'quota_exceeded']),
  repository: z.string().nullable(),
  tags: z.array(z.string()),
  digest: z.string().nullable(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int(),
  cycle: z.number().int(),
  nextAttemptAt: time.nullable(),
  eventAt: time,
  createdAt: time,
  updatedAt: time,
  lastAttempt: attemptView.nullable(),
});
export const deliveryDetailView = deliveryView.extend({ attemptHistory: z.array(attemptView), payload: z.unknown() });
export const webhookWithSecretView = z.object({ webhook: webhookView, secret: z.string().describe('Shown once') });
export const deliveryQueuedView = z.object({ delivery: deliveryView });

const progress = z.object({
  manifestsDone: z.number(),
  manifestsTotal: z.number(),
  blobsDone: z.number(),
  blobsTotal: z.number(),
  bytesDone: z.number(),
  bytesTotal: z.number(),
  targetsDone: z.number(),
  targetsTotal: z.number(),
});
export const importJobView = z.object({
  id: z.string(),
  status: z.enum(['queued', 'running', 'succeeded', 'failed']),
  source: z.object({ registry: z.string(), repository: z.string(), reference: z.string() }),
  targets: z.array(z.object({ repository: z.string(), tags: z.array(z.string()) })),
  mode: z.enum(['Force', 'NoForce']),
  includeReferrers: z.boolean(),
  requestedBy: z.object({ id: z.string(), name: z.string() }).nullable(),
  attempts: z.number().int(),
  createdAt: time,
  startedAt: time.nullable(),
  finishedAt: time.nullable(),
  retryAt: time.nullable(),
  progress: progress.nullable(),
  result: z
    .object({ digest: z.string(), mediaType: z.string(), manifests: z.number(), blobsCopied: z.number(), blobsSkipped: z.number(), bytesCopied: z.number() })
    .nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  credentials: z.enum(['request', 'server']),
});

export const historyView = z.object({
  repository: z.string(),
  pushes: z.array(
    z.object({
      digest: z.string(),
      tag: z.string().nullable(),
      at: time,
      principal: z.object({ id: z.string(), name: z.string() }).nullable(),
      provenance: z.record(z.unknown()).nullable(),
    }),
  ),
  attestations: z
    .record(z.object({ status: z.enum(['verified', 'invalid', 'none']), identity: z.string().nullable() }))
    .describe('Per digest in `pushes`: whether it carries a valid push attestation'),
});

export const signingKeysView = z.object({
  keys: z.array(
    z.object({
      kid: z.string(),
      alg: z.string(),
      createdAt: time,
      retiredAt: time.nullable(),
      revokedAt: time.nullable(),
      state: z.enum(['active', 'retired', 'revoked']),
    }),
  ),
});
export const revokedKeyView = z.object({ kid: z.string(), signingKid: z.string().describe('The key that signs from now on') });

const attestationKeyView = z.object({
  hint: z.string().describe("hex sha256 of the key's SubjectPublicKeyInfo DER (a bundle's publicKey.hint)"),
  algorithm: z.string(),
  publicKeyPem: z.string(),
  createdAt: time,
  retiredAt: time.nullable(),
});
export const attestationKeysView = z.object({ keys: z.array(attestationKeyView) });
export const rotatedAttestationKeyView = z.object({ hint: z.string() });
export const imageAttestationsView = z.object({
  repository: z.string(),
  digest: z.string(),
  attestations: z.array(
    z.object({
      digest: z.string(),
      valid: z.boolean(),
      error: z.string().nullable(),
      keyHint: z.string().nullable(),
      berth: z.boolean(),
      predicateType: z.string().nullable(),
      push: z.record(z.unknown()).nullable(),
    }),
  ),
  pull: z.object({ allowed: z.boolean(), rule: z.string().nullable(), reason: z.string().nullable() }),
});
export const attestationRequirementView = z.object({ repository: z.string(), required: z.boolean(), rules: z.array(z.string()) });

/** Compiles only when every value of `View` is a value the schema describes. */
type Conforms<View, Schema extends z.ZodTypeAny> = View extends z.input<Schema> ? true : never;
const conforms: [
  Conforms<PrincipalView, typeof principalView>,
  Conforms<FederatedCredentialView, typeof federatedCredentialView>,
  Conforms<IssuedSecret, typeof issuedSecret>,
  Conforms<CreatedPrincipalView, typeof createdPrincipalView>,
  Conforms<PutFederatedCredentialView, typeof putFederatedCredentialView>,
  Conforms<AnonymousPullView, typeof anonymousPullView>,
  Conforms<RotatedKeyView, typeof rotatedKeyView>,
  Conforms<AuditEntryView, typeof auditEntryView>,
  Conforms<AuditPageView, typeof auditPageView>,
  Conforms<LogLevelView, typeof logLevelView>,
  Conforms<WebhookView, typeof webhookView>,
  Conforms<DeliveryView, typeof deliveryView>,
  Conforms<DeliveryDetailView, typeof deliveryDetailView>,
  Conforms<WebhookWithSecretView, typeof webhookWithSecretView>,
  Conforms<DeliveryQueuedView, typeof deliveryQueuedView>,
  Conforms<ImportJobView, typeof importJobView>,
  Conforms<HistoryView, typeof historyView>,
  Conforms<{ keys: SigningKeyView[] }, typeof signingKeysView>,
  Conforms<RevokedKeyView, typeof revokedKeyView>,
  Conforms<AttestationKeysView, typeof attestationKeysView>,
  Conforms<RotatedAttestationKeyView, typeof rotatedAttestationKeyView>,
  Conforms<ImageAttestationsView, typeof imageAttestationsView>,
  Conforms<AttestationRequirementView, typeof attestationRequirementView>,
] = [true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true];
void conforms;
