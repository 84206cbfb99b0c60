/**
 * Webhook delivery signatures, shared by the sender (the webhook dispatcher) and the receiver (the
 * sync endpoint of another Berth, or any receiver that implements the documented scheme).
 *
 * Scheme (documented in docs/webhooks.md): the header
 *
 *     Berth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *
 * The timestamp is inside the MAC, so a captured delivery cannot be replayed with a fresh
 * timestamp; receivers refuse timestamps further than `toleranceSeconds` from their clock, and
 * dedupe on the event id (`Berth-Event-Id`, also the payload's `id`) within that window. Several
 * `v1=` entries may appear (a sender rotating its secret signs with both); one match is enough.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const signatureHeader = 'berth-signature';
export const eventIdHeader = 'berth-event-id';
export const eventTypeHeader = 'berth-event';
export const defaultToleranceSeconds = 300;

/** The header value for `body` sent at `nowMs` and signed with each of `secrets`. */
export function signDelivery(secrets: readonly string[], body: Buffer | string, nowMs: number): string {
  const t = Math.floor(nowMs / 1000);
  const macs = secrets.map((secret) => `v1=${mac(secret, t, body)}`);
  return [`t=${t}`, ...macs].join(',');
}

export type SignatureCheck = { ok: true; timestamp: number } | { ok: false; reason: string };

/**
 * Checks a `Berth-Signature` header against the raw body with any of `secrets`. The reasons are
 * fit to return to the sender (they say which check failed, never anything about the secret).
 */
export function verifyDelivery(
  secrets: readonly string[],
  header: string | undefined,
  body: Buffer | string,
  nowMs: number,
  toleranceSeconds = defaultToleranceSeconds,
): SignatureCheck {
  if (header === undefined || header === '') return { ok: false, reason: 'missing Berth-Signature header' };
  let t: number | undefined;
  const given: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) given.push(value);
  }
  if (t === undefined) return { ok: false, reason: 'Berth-Signature has no valid t= timestamp' };
  if (given.length === 0) return { ok: false, reason: 'Berth-Signature has no v1= signature' };
  if (Math.abs(nowMs / 1000 - t) > toleranceSeconds) {
    return { ok: false, reason: `Berth-Signature timestamp is more than ${toleranceSeconds}s from the receiver's clock` };
  }
  for (const secret of secrets) {
    const expected = Buffer.from(mac(secret, t, body), 'hex');
    // Every candidate is compared (no early exit on the first byte) in constant time.
    if (given.some((candidate) => timingSafeEqual(expected, Buffer.from(candidate, 'hex')))) return { ok: true, timestamp: t };
  }
  return { ok: false, reason: 'Berth-Signature does not match the body' };
}

function mac(secret: string, t: number, body: Buffer | string): string {
  return createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
}
