/**
 * What a webhook delivery carries. The default body is the Azure Container Registry webhook
 * payload, so receivers written for ACR (logic apps, acr-sync style importers) work unchanged:
 *
 *     {id, timestamp, action, target: {mediaType, size, digest, length, repository, tag},
 *      request: {id, host, method, useragent}}
 *
 * plus one extension field, `berth`, with who made the change (and, for federated logins, the
 * OIDC token's provenance claims). The payload is built once, inside the transaction that commits
 * the change (`imageChangeEvents`, the registry's `ChangeEvents` builder), and stored with the
 * event, so every delivery and redelivery of an event sends the same bytes' meaning and the same
 * `id`: receivers dedupe on it.
 *
 * A subscription may ask for CloudEvents 1.0 instead (structured content mode, one JSON document):
 * the envelope's `data` is the ACR payload above.
 */
import { randomUUID } from 'node:crypto';
import type { EventAction, NewEvent } from '../metadata/event-store.js';
import type { Pusher } from '../metadata/store.js';
import type { ChangeEvents, ImageChange, RequestInfo } from '../registry/changes.js';

export { eventActions, type EventAction } from '../metadata/event-store.js';

export interface AcrTarget {
  mediaType?: string;
  size?: number;
  digest?: string;
  length?: number;
  repository?: string;
  tag?: string;
}

export interface BerthExtension {
  /** Who made the change: the pusher of a push, the deleter of a delete; null when auth is off. */
  actor: { principalId: string; principalName: string; provenance: Record<string, unknown> | null } | null;
  /** A manifest deleted by digest: the tags that pointed at it and went with it. */
  removedTags?: string[];
  /** A ping: the webhook it was sent to. */
  webhook?: string;
  /** A quota event (`quota_warning`, `quota_exceeded`): the quota, its limit and the usage that crossed it. */
  quota?: QuotaEventDetail;
}

/** What a quota event reports (lifecycle quotas, docs/lifecycle.md). */
export interface QuotaEventDetail {
  name: string;
  repositories: string[];
  limitBytes: number;
  usageBytes: number;
  /** A push refused for the quota: how many bytes it would have added. */
  refusedBytes?: number;
}

export interface AcrPayload {
  id: string;
  timestamp: string;
  action: EventAction;
  target?: AcrTarget;
  request?: RequestInfo;
  berth: BerthExtension;
}

export function imagePayload(id: string, at: number, change: ImageChange): AcrPayload {
  const target: AcrTarget = {};
  if (change.mediaType !== undefined) target.mediaType = change.mediaType;
  if (change.size !== undefined) target.size = change.size;
  target.digest = change.digest;
  if (change.size !== undefined) target.length = change.size;
  target.repository = change.repository;
  if (change.tag !== undefined) target.tag = change.tag;
  const berth: BerthExtension = { actor: actorOf(change.actor) };
  if (change.removedTags !== undefined) berth.removedTags = [...change.removedTags];
  return {
    id,
    timestamp: new Date(at).toISOString(),
    action: change.action,
    target,
    ...(change.request ? { request: { ...change.request } } : {}),
    berth,
  };
}

export function pingPayload(id: string, at: number, webhook: string, actor: Pusher | undefined, request: RequestInfo | undefined): AcrPayload {
  return {
    id,
    timestamp: new Date(at).toISOString(),
    action: 'ping',
    ...(request ? { request: { ...request } } : {}),
    berth: { actor: actorOf(actor), webhook },
  };
}

/**
 * The outbox row of a quota crossing its warning level or its limit. `repository` is the one a push
 * went to when a push caused it (undefined when the usage job found it), so repository filters
 * still select; the actor is who pushed, if a push did.
 */
export function quotaEvent(
  action: 'quota_warning' | 'quota_exceeded',
  quota: QuotaEventDetail,
  cause: { repository?: string | undefined; actor?: Pusher | undefined },
  now: number,
): NewEvent {
  const id = randomUUID();
  const payload: AcrPayload = {
    id,
    timestamp: new Date(now).toISOString(),
    action,
    ...(cause.repository !== undefined ? { target: { repository: cause.repository } } : {}),
    berth: { actor: actorOf(cause.actor), quota: { ...quota, repositories: [...quota.repositories] } },
  };
  return { id, action, repository: cause.repository, tags: [], digest: undefined, payload: JSON.stringify(payload) };
}

/**
 * The outbox row of a repository change (the registry's `ChangeEvents`): one event with a fresh
 * id, the tags filters match on, and the ACR payload serialised once.
 */
export const imageChangeEvents: ChangeEvents = (change: ImageChange, now: number): NewEvent[] => {
  const id = randomUUID();
  return [
    {
      id,
      action: change.action,
      repository: change.repository,
      tags: changeTags(change),
      digest: change.digest,
      payload: JSON.stringify(imagePayload(id, now, change)),
    },
  ];
};

function actorOf(actor: Pusher | undefined): BerthExtension['actor'] {
  return actor ? { principalId: actor.principalId, principalName: actor.principalName, provenance: actor.provenance ?? null } : null;
}

/** The tags a change carries for filter matching (see `filter.ts`). */
export function changeTags(change: Pick<ImageChange, 'tag' | 'removedTags'>): string[] {
  return change.tag !== undefined ? [change.tag] : [...(change.removedTags ?? [])];
}

// ---------------------------------------------------------------------------------------------
// CloudEvents 1.0, structured content mode (https://github.com/cloudevents/spec, JSON format).

export const cloudEventsContentType = 'application/cloudevents+json; charset=utf-8';

const cloudEventTypes: Record<EventAction, string> = {
  push: 'dev.berth.image.pushed',
  delete: 'dev.berth.image.deleted',
  ping: 'dev.berth.webhook.ping',
  quota_warning: 'dev.berth.quota.warning',
  quota_exceeded: 'dev.berth.quota.exceeded',
};

export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time: string;
  subject?: string;
  datacontenttype: 'application/json';
  data: AcrPayload;
}

/**
 * The CloudEvents envelope of a stored payload. `id` is the event id (receivers dedupe on
 * `source` + `id`, as the spec says); `source` is the repository's API path (`/v2/<repository>`),
 * `/api/v1/lifecycle/quotas/<name>` for a quota event without one, or `/api/v1/webhooks/<name>` for a ping; `subject` is `<repository>:<tag>` or
 * `<repository>@<digest>`.
 */
export function cloudEvent(payload: AcrPayload): CloudEvent {
  const target = payload.target;
  const repository = target?.repository;
  const event: CloudEvent = {
    specversion: '1.0',
    id: payload.id,
    source:
      repository !== undefined
        ? `/v2/${repository}`
        : payload.berth.quota !== undefined
          ? `/api/v1/lifecycle/quotas/${encodeURIComponent(payload.berth.quota.name)}`
          : `/api/v1/webhooks/${encodeURIComponent(payload.berth.webhook ?? '')}`,
    type: cloudEventTypes[payload.action],
    time: payload.timestamp,
    datacontenttype: 'application/json',
    data: payload,
  };
  if (repository !== undefined) {
    event.subject = target?.tag !== undefined ? `${repository}:${target.tag}` : `${repository}@${target?.digest ?? ''}`;
  }
  return event;
}
