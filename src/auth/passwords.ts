/**
 * Secrets at rest: scrypt (memory-hard, in Node's crypto, no native addon) with a per-secret salt,
 * compared in constant time. Encoded as `scrypt$N$r$p$salt$hash` (base64url) so parameters can
 * be raised later without invalidating stored hashes.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const params = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const keyLength = 32;

function derive(secret: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((ok, fail) => scrypt(secret, salt, keyLength, options, (err, key) => (err ? fail(err) : ok(key))));
}

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  return encode(salt, await derive(secret, salt, params));
}

/**
 * A stored-hash string with the current parameters that no secret matches (a random salt and a
 * random key, not a derived one): verifying against it costs what verifying a real hash costs.
 * Made without running scrypt, whose 32 MiB would otherwise be the start-up peak of every process.
 */
export function decoyHash(): string {
  return encode(randomBytes(16), randomBytes(keyLength));
}

function encode(salt: Buffer, key: Buffer): string {
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifySecret(secret: string, encoded: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = encoded.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await derive(secret, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p), maxmem: params.maxmem });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A new random secret, shown once to its owner: 32 bytes, base64url (43 characters). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}
