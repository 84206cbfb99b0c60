/** A token that is malformed, badly signed, expired, revoked or signed by a revoked key. */
export class InvalidTokenError extends Error {
  override name = 'InvalidTokenError';
}
