import { randomUUID } from 'node:crypto';

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, the version, then 74 random bits.
 *
 * For primary keys written one per request (refresh tokens): ids made close in time sort next to
 * each other, so the rows a group commit writes together land on the key index's last page,
 * instead of one random page each as with random (v4) keys. The time in an id is readable: never
 * use one where the moment it was made is a secret. Its random part is not guessable either way.
 *
 * Written here (a few lines) because Node 20's crypto makes only v4; the random bits are those of
 * `randomUUID`, which Node draws from a pool it refills in batches.
 */
export function timeOrderedId(nowMs: number): string {
  const time = Math.max(0, Math.min(Math.floor(nowMs), 2 ** 48 - 1))
    .toString(16)
    .padStart(12, '0');
  // randomUUID: xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx; from index 15 on, the random bits and the variant.
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${randomUUID().slice(15)}`;
}
