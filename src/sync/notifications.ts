/**
 * What the sync receiver accepts from a sender, reduced to one work item shape.
 *
 * Senders and their shapes:
 *   - Berth's webhooks and ACR webhooks: one event per delivery,
 *     `{id, timestamp, action, target: {mediaType, size, digest, length, repository, tag?}, request}`;
 *   - CNCF Distribution notifications: an envelope `{events: [{id, action, target: {repository,
 *     digest, tag?, mediaType}}]}` (Content-Type `application/vnd.docker.distribution.events.v1+json`);
 *   - a Berth webhook in CloudEvents format: `{specversion, id, type, data: <the ACR event>}`.
 * Every event becomes a `Notification` (repository, tag?, digest?); the content type is not
 * relied on, the shape is.
 *
 * Authentication (`authenticateDelivery`): a `Berth-Signature` HMAC over the raw body
 * (`src/shared/webhook-signature.ts`), or, for senders that cannot sign, `Authorization: Bearer <secret>`
 * (ACR webhooks and Distribution endpoints send fixed custom headers). Both use the rule's secret.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { signatureHeader, verifyDelivery } from '../shared/webhook-signature.js';
import { tryParseDigest } from '../oci/digest.js';
import { isValidRepositoryName, isValidTag } from '../oci/names.js';

export interface Notification {
  /** The sender's event id, when it gives one (used to drop repeated deliveries). */
  id: string | undefined;
  /** `push`, `delete`, `ping`, `pull`, … lower-cased. */
  action: string;
  repository: string | undefined;
  tag: string | undefined;
  digest: string | undefined;
  /** Set for an event of an envelope that could not be read (the rest of the envelope still counts). */
  problem?: string;
}

export class MalformedNotification extends Error {
  override name = 'MalformedNotification';
}

/** At most this many events in one envelope (Distribution batches them). */
export const maxEventsPerDelivery = 1000;

/**
 * Parses a delivery's body (`envelope`: it was Distribution's `{events}` form). `headerEventId` (`Berth-Event-Id`) names the event of a one-event
 * delivery when its body has no `id`. Throws MalformedNotification with a message fit for the sender.
 */
export function parseNotifications(body: Buffer, headerEventId: string | undefined): { envelope: boolean; notifications: Notification[] } {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new MalformedNotification('the body is not valid JSON');
  }
  if (!isObject(value)) throw new MalformedNotification('the body must be a JSON object: an event {action, target} or an envelope {events: [...]}');
  if ('specversion' in value) {
    const id = optionalString(value['id'], 'id', 256) ?? headerEventId;
    if (!isObject(value['data'])) throw new MalformedNotification('a CloudEvent must carry the event in data');
    return { envelope: false, notifications: [parseEvent(value['data'], 'data', id)] };
  }
  if ('events' in value) {
    const events = value['events'];
    if (!Array.isArray(events)) throw new MalformedNotification('events must be an array');
    if (events.length > maxEventsPerDelivery) throw new MalformedNotification(`at most ${maxEventsPerDelivery} events per delivery`);
    // One unreadable event does not sink the batch: Distribution would resend it forever.
    const notifications = events.map((event, i): Notification => {
      try {
        return parseEvent(event, `events.${i}`, undefined);
      } catch (err) {
        if (!(err instanceof MalformedNotification)) throw err;
        return { id: undefined, action: 'malformed', repository: undefined, tag: undefined, digest: undefined, problem: err.message };
      }
    });
    return { envelope: true, notifications };
  }
  return { envelope: false, notifications: [parseEvent(value, '', headerEventId)] };
}

function parseEvent(value: unknown, path: string, fallbackId: string | undefined): Notification {
  const at = (field: string) => (path ? `${path}.${field}` : field);
  if (!isObject(value)) throw new MalformedNotification(`${path || 'the body'} must be an object`);
  const action = value['action'];
  if (typeof action !== 'string' || action.length === 0 || action.length > 64)
    throw new MalformedNotification(`${at('action')} must be a string such as "push"`);
  const id = optionalString(value['id'], at('id'), 256) ?? fallbackId;
  const normalized = action.toLowerCase();
  if (normalized === 'ping') return { id, action: normalized, repository: undefined, tag: undefined, digest: undefined };
  const target = value['target'];
  if (!isObject(target)) throw new MalformedNotification(`${at('target')} must be an object with repository, digest and tag`);
  const repository = target['repository'];
  if (typeof repository !== 'string' || !isValidRepositoryName(repository)) {
    throw new MalformedNotification(`${at('target.repository')} must be a valid repository name`);
  }
  const tag = optionalString(target['tag'], at('target.tag'), 128);
  if (tag !== undefined && !isValidTag(tag)) throw new MalformedNotification(`${at('target.tag')} is not a valid tag`);
  const digest = optionalString(target['digest'], at('target.digest'), 200);
  if (digest !== undefined && tryParseDigest(digest) === undefined) throw new MalformedNotification(`${at('target.digest')} is not a valid digest`);
  return { id, action: normalized, repository, tag: tag === '' ? undefined : tag, digest };
}

function optionalString(value: unknown, field: string, maxLength: number): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length > maxLength) throw new MalformedNotification(`${field} must be a string of at most ${maxLength} characters`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A delivery's request headers, names lower-cased (as Node's `IncomingMessage.headers` gives them,
 * which fits this type); a plain record so sync/ depends on no HTTP server type.
 */
export type DeliveryHeaders = Readonly<Record<string, string | string[] | undefined>>;

export type DeliveryCheck = { ok: true; method: 'signature' | 'bearer' } | { ok: false; reason: string };

/**
 * Checks a delivery against the rule's secret: the `Berth-Signature` header when present (a
 * signed delivery is never accepted on its bearer header alone), else `Authorization: Bearer`.
 * Reasons say which check failed, never anything about the secret.
 */
export function authenticateDelivery(secret: string, headers: DeliveryHeaders, body: Buffer, nowMs: number, toleranceSeconds: number): DeliveryCheck {
  const signature = headers[signatureHeader];
  if (typeof signature === 'string') {
    const check = verifyDelivery([secret], signature, body, nowMs, toleranceSeconds);
    return check.ok ? { ok: true, method: 'signature' } : check;
  }
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1]) return { ok: false, reason: 'the Authorization header is not "Bearer <secret>"' };
    // Compared as hashes: equal lengths for timingSafeEqual, and no early exit on the length.
    const given = createHash('sha256').update(match[1]).digest();
    const expected = createHash('sha256').update(secret).digest();
    return timingSafeEqual(given, expected) ? { ok: true, method: 'bearer' } : { ok: false, reason: 'the bearer secret does not match' };
  }
  return { ok: false, reason: 'missing Berth-Signature header (or Authorization: Bearer <secret>)' };
}
