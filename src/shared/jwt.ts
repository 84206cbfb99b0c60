/**
 * Compact JWS JWTs over node:crypto: Berth signs and verifies its own tokens here (ES256; EdDSA is
 * accepted for verification), and reads the claims of a token it has not verified (`decodeClaims`,
 * `readUnverified`: which issuer an OIDC token names, before its keys are looked up).
 *
 * Written by hand although jose does it, for speed: jose verifies through WebCrypto (an async job
 * per signature, the key re-wrapped on every call) and costs about twice the signature check
 * itself: ~105 µs of CPU per verification against ~50 µs here, ~60 against ~30 to sign (ES256,
 * on the project's 2-core machine; the commit that added this file has the method). Every registry
 * request with a token not seen before pays the verification (for Berth's own tokens, their MAC:
 * `claimsMac`), and every token grant a signature.
 * OIDC tokens of federated issuers are verified here too (RS256, PS256, ES256, EdDSA), every
 * federated grant verifying a fresh one; their keys are still found by jose (discovery of the key
 * set, fetching and caching it, choosing the key by `kid` and `alg`), which hands over a CryptoKey.
 *
 * Rules, those of jose's `jwtVerify` for what Berth's tokens and OIDC tokens use:
 * - exactly three base64url parts; header and claims are JSON objects (strict UTF-8);
 * - `alg` in the allowed list and matching the key (ES256: a P-256 key; EdDSA: Ed25519; RS256 and
 *   PS256: an RSA key of at least 2048 bits); a header with `crit` or `b64` is refused (neither
 *   Berth nor the OIDC issuers write them);
 * - `typ`, when asked for, compared as a media type (case-insensitive, `application/` implied);
 * - with a MAC key (`macKeyFor`), a token whose `bmac` header matches is accepted without its
 *   signature being checked (see `claimsMac`); every other rule still applies to it;
 * - required claims present (own properties); `iss` equal; `aud`, when an audience is asked for, a
 *   string or array containing it; `iat`, `nbf`, `exp` numbers when present; `nbf <= now + tolerance`,
 *   `exp > now - tolerance`; with a maximum token age, `iat` present, `now - iat - tolerance <= age`
 *   and `iat <= now + tolerance` (whole seconds).
 */
import { isAscii } from 'node:buffer';
import { constants, createHmac, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';

/**
 * A refused token; `code` is jose's error code for the same refusal (logs and tests read it), and
 * `claim` the claim whose check failed, as jose reports it.
 */
export class JwtError extends Error {
  override name = 'JwtError';
  constructor(
    readonly code: string,
    message: string,
    readonly claim?: string,
  ) {
    super(message);
  }
}

export interface JwtHeader {
  alg: string;
  kid?: string;
  typ?: string;
  [name: string]: unknown;
}

export type JwtClaims = Record<string, unknown>;

/** What Berth signs with. */
export type JwtAlgorithm = 'ES256' | 'EdDSA';

export interface JwtVerifyOptions {
  algorithms: readonly string[];
  /** The expected `typ` header; unchecked when absent. */
  typ?: string;
  issuer: string;
  /** An audience `aud` must contain; unchecked when absent (the caller matches audiences itself). */
  audience?: string;
  clockToleranceSeconds: number;
  /** Now, in milliseconds. */
  now: number;
  requiredClaims: readonly string[];
  /** The oldest `iat` accepted, in seconds before now (jose's `maxTokenAge`); `iat` is then required. */
  maxTokenAgeSeconds?: number;
  /**
   * The MAC key of the token's signing key (asked after `keyFor` found that key), when the verifier
   * holds it. A token whose `bmac` header matches under it is accepted without its signature being
   * checked; a token without one, or with one that does not match, has its signature checked.
   */
  macKeyFor?: (header: JwtHeader) => KeyObject | undefined;
}

/**
 * The protected-header parameter carrying a token's MAC. A private name (RFC 7515 section 4.3):
 * verifiers that do not know it ignore it and check the signature, as they must.
 */
export const macParameter = 'bmac';

/**
 * The MAC of a token Berth signs, put in its header next to the ES256 signature: HMAC-SHA256 over
 * the token's `typ`, a dot and the encoded claims, under a secret key only holders of the signing
 * key have (keys.ts derives it from the private key). Why: every Berth replica holds the private
 * keys, so it can prove a token is its own with an HMAC (~2 µs of CPU here) instead of a P-256
 * signature check (~45 µs), on the registry path where every new token pays it. Outsiders only
 * ever check the signature. The MAC covers the claims and the `typ` the verifier asks for, so a
 * refresh token's MAC never passes as an access token's; it need not cover the rest of the header:
 * `kid` chooses the MAC key (another key's MAC does not match), and `alg` is checked against that
 * key either way.
 */
export function claimsMac(key: KeyObject, typ: string, encodedClaims: string): Buffer {
  // One update of the joined input: each update is a call into OpenSSL (~0.5 µs apiece here).
  return createHmac('sha256', key).update(`${typ}.${encodedClaims}`).digest();
}

function macMatches(header: JwtHeader, encodedClaims: string, options: JwtVerifyOptions): boolean {
  const presented = header[macParameter];
  if (typeof presented !== 'string' || options.macKeyFor === undefined) return false;
  const key = options.macKeyFor(header);
  if (key === undefined || !base64url.test(presented)) return false;
  const expected = claimsMac(key, options.typ ?? '', encodedClaims);
  const given = Buffer.from(presented, 'base64url');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const base64url = /^[A-Za-z0-9_-]*$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function decodePart(part: string, what: string, code: string): Buffer {
  // Unpadded base64url never leaves one character over; Buffer.from would silently drop it.
  if (!base64url.test(part) || part.length % 4 === 1) throw new JwtError(code, `${what} is not base64url`);
  return Buffer.from(part, 'base64url');
}

function jsonObject(part: string, what: string, code: string): Record<string, unknown> {
  let value: unknown;
  try {
    const bytes = decodePart(part, what, code);
    // ASCII (what JWTs nearly always are) is valid UTF-8 as it stands; only other bytes need the strict decoder.
    value = JSON.parse(isAscii(bytes) ? bytes.toString('latin1') : strictUtf8.decode(bytes));
  } catch (err) {
    if (err instanceof JwtError) throw err;
    throw new JwtError(code, `${what} must be a JSON object`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new JwtError(code, `${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * A token whose claims were read before it was verified (an OIDC token names its issuer, and the
 * issuer decides the keys), kept together so that `verifyJwt` uses that one parse instead of
 * decoding the claims again: ~3 µs of CPU per read in a loop, and a federated grant read them up to
 * three times. The claims are untrusted until `verifyJwt` returns them, and must not be changed
 * before it does: it checks the signature over the token's own bytes and returns this object.
 */
export interface UnverifiedJwt {
  readonly token: string;
  readonly claims: JwtClaims;
}

/** `token` with its claims decoded, unverified. Throws JwtError as `decodeClaims` does. */
export function readUnverified(token: string): UnverifiedJwt {
  return { token, claims: decodeClaims(token) };
}

/** The claims of a compact JWT, unverified (jose's `decodeJwt`). Throws JwtError if it is not one. */
export function decodeClaims(token: string): JwtClaims {
  const parts = token.split('.');
  if (parts.length === 5) throw new JwtError('ERR_JWT_INVALID', 'Only JWTs using Compact JWS serialization can be decoded');
  if (parts.length !== 3) throw new JwtError('ERR_JWT_INVALID', 'Invalid JWT');
  if (!parts[1]) throw new JwtError('ERR_JWT_INVALID', 'JWTs must contain a payload');
  return jsonObject(parts[1], 'the JWT claims set', 'ERR_JWT_INVALID');
}

function keyFits(alg: string, key: KeyObject): boolean {
  if (key.type === 'secret') return false;
  if (alg === 'ES256') return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  if (alg === 'EdDSA') return key.asymmetricKeyType === 'ed25519';
  // RFC 7518 section 3.3: "A key of size 2048 bits or larger MUST be used" (jose refuses smaller too).
  const rsa = (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048;
  if (alg === 'RS256') return key.asymmetricKeyType === 'rsa' && rsa;
  if (alg === 'PS256') return (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') && rsa;
  return false;
}

/** The signature check of `alg` (already matched to the key by keyFits). */
function signatureValid(alg: string, input: Buffer, key: KeyObject, signature: Buffer): boolean {
  switch (alg) {
    case 'ES256':
      return signature.length === 64 && verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature);
    case 'RS256':
      return verify('sha256', input, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    case 'PS256':
      // RFC 7518 section 3.5: MGF1 with SHA-256 and a salt as long as the hash.
      return verify('sha256', input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature);
    default:
      return verify(null, input, key, signature);
  }
}

/**
 * `header.payload.signature` signed with `key` (a P-256 private key for ES256, Ed25519 for EdDSA);
 * with `macKey`, the header also carries the claims' MAC (`claimsMac`, under the header's `typ`).
 */
export function signJwt(header: JwtHeader & { alg: JwtAlgorithm }, claims: JwtClaims, key: KeyObject, macKey?: KeyObject): string {
  if (key.type !== 'private' || !keyFits(header.alg, key)) throw new TypeError(`a ${header.alg} token needs a matching private key`);
  for (const claim of ['iat', 'nbf', 'exp']) {
    const value = claims[claim];
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError(`"${claim}" claim must be a finite number`);
  }
  const encodedClaims = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const fullHeader = macKey ? Object.assign({}, header, { [macParameter]: claimsMac(macKey, header.typ ?? '', encodedClaims).toString('base64url') }) : header;
  const input = `${Buffer.from(JSON.stringify(fullHeader)).toString('base64url')}.${encodedClaims}`;
  const signature = header.alg === 'ES256' ? sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }) : sign(null, Buffer.from(input), key);
  return `${input}.${signature.toString('base64url')}`;
}

const normalizeTyp = (value: string): string => {
  const lower = value.toLowerCase();
  return value.includes('/') ? lower : `application/${lower}`;
};

function claimFailed(message: string, claim: string): JwtError {
  return new JwtError('ERR_JWT_CLAIM_VALIDATION_FAILED', message, claim);
}

function requireClaim(claims: JwtClaims, claim: string): void {
  if (!Object.hasOwn(claims, claim)) throw claimFailed(`missing required "${claim}" claim`, claim);
}

function numericDate(claims: JwtClaims, name: string): number | undefined {
  const value = claims[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw claimFailed(`"${name}" claim must be a number`, name);
  return value;
}

/**
 * Verifies a token: header, signature with the key `keyFor` returns for its header (none: refused;
 * or the MAC, see `macKeyFor`), then the claims (see the module comment). Resolves to the header
 * and claims. Given an `UnverifiedJwt`, its claims are the ones checked and returned: they were
 * decoded from the same part of the same token the signature is checked over.
 */
export async function verifyJwt(
  input: string | UnverifiedJwt,
  keyFor: (header: JwtHeader) => Promise<KeyObject | undefined>,
  options: JwtVerifyOptions,
): Promise<{ header: JwtHeader; claims: JwtClaims }> {
  const token = typeof input === 'string' ? input : input.token;
  const parts = token.split('.');
  if (parts.length !== 3) throw new JwtError('ERR_JWS_INVALID', 'Invalid Compact JWS');
  const [encodedHeader, encodedClaims, encodedSignature] = parts as [string, string, string];
  const header = jsonObject(encodedHeader, 'the JWS protected header', 'ERR_JWS_INVALID');
  if ('crit' in header || 'b64' in header) throw new JwtError('ERR_JWS_INVALID', 'JWS "crit" and "b64" header parameters are not accepted');
  const alg = header['alg'];
  if (typeof alg !== 'string' || alg === '') throw new JwtError('ERR_JWS_INVALID', 'JWS "alg" (Algorithm) Header Parameter missing or invalid');
  if (!options.algorithms.includes(alg)) throw new JwtError('ERR_JOSE_ALG_NOT_ALLOWED', '"alg" (Algorithm) Header Parameter value not allowed');
  if (header['kid'] !== undefined && typeof header['kid'] !== 'string') throw new JwtError('ERR_JWS_INVALID', 'JWS "kid" Header Parameter must be a string');
  const key = await keyFor(header as JwtHeader);
  if (!key) throw new JwtError('ERR_JWKS_NO_MATCHING_KEY', 'no key matches the token');
  if (!keyFits(alg, key) || key.type !== 'public') throw new JwtError('ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'the key does not fit the algorithm');
  const signature = decodePart(encodedSignature, 'the JWS signature', 'ERR_JWS_INVALID');
  if (!macMatches(header as JwtHeader, encodedClaims, options)) {
    const signingInput = Buffer.from(`${encodedHeader}.${encodedClaims}`);
    if (!signatureValid(alg, signingInput, key, signature)) throw new JwtError('ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'signature verification failed');
  }

  const claims = typeof input === 'string' ? jsonObject(encodedClaims, 'the JWT claims set', 'ERR_JWT_INVALID') : input.claims;
  const typ = header['typ'];
  if (options.typ !== undefined && (typeof typ !== 'string' || normalizeTyp(typ) !== normalizeTyp(options.typ))) {
    throw claimFailed('unexpected "typ" JWT header value', 'typ');
  }
  for (const claim of options.requiredClaims) requireClaim(claims, claim);
  requireClaim(claims, 'iss');
  if (options.audience !== undefined) requireClaim(claims, 'aud');
  if (options.maxTokenAgeSeconds !== undefined) requireClaim(claims, 'iat');
  if (claims['iss'] !== options.issuer) throw claimFailed('unexpected "iss" claim value', 'iss');
  if (options.audience !== undefined) {
    const aud = claims['aud'];
    const audienceOk = typeof aud === 'string' ? aud === options.audience : Array.isArray(aud) && aud.includes(options.audience);
    if (!audienceOk) throw claimFailed('unexpected "aud" claim value', 'aud');
  }
  const now = Math.floor(options.now / 1000);
  const tolerance = options.clockToleranceSeconds;
  const iat = numericDate(claims, 'iat');
  const nbf = numericDate(claims, 'nbf');
  if (nbf !== undefined && nbf > now + tolerance) throw claimFailed('"nbf" claim timestamp check failed', 'nbf');
  const exp = numericDate(claims, 'exp');
  if (exp !== undefined && exp <= now - tolerance) throw new JwtError('ERR_JWT_EXPIRED', '"exp" claim timestamp check failed', 'exp');
  if (options.maxTokenAgeSeconds !== undefined && iat !== undefined) {
    const age = now - iat;
    if (age - tolerance > options.maxTokenAgeSeconds) throw new JwtError('ERR_JWT_EXPIRED', '"iat" claim timestamp check failed (too far in the past)', 'iat');
    if (age < -tolerance) throw claimFailed('"iat" claim timestamp check failed (it should be in the past)', 'iat');
  }
  return { header: header as JwtHeader, claims };
}
