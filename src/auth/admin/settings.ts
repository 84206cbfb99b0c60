/**
 * Registry-wide policy and operations through the management API: the anonymous-pull patterns and
 * signing keys (rotation, revocation). Every change is audited.
 */
import type { AnonymousPullView, RevokedKeyView, RotatedKeyView, SigningKeyView } from '../../api/audit.js';
import { ApiError } from '../../api/errors.js';
import type { AnonymousPullIndex } from '../../metadata/auth-store.js';
import type { Actor } from '../../shared/actor.js';
import type { Clock } from '../../shared/clock.js';
import type { KeyRing } from '../keys.js';
import type { AuditLog } from './audit.js';

export class SettingsAdmin {
  constructor(
    private readonly anonymous: AnonymousPullIndex,
    private readonly keys: Pick<KeyRing, 'rotate' | 'revoke' | 'list' | 'signingKey'>,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  /** The repository patterns anyone may pull without a token. */
  async anonymousPull(): Promise<AnonymousPullView> {
    return { patterns: await this.anonymous.list() };
  }

  /**
   * Replaces the anonymous-pull patterns (already validated); `[]` turns anonymous pull off. The
   * authorizer of every replica re-reads the list within a few seconds (see auth/authorizer.ts).
   */
  async replaceAnonymousPull(actor: Actor, patterns: string[]): Promise<AnonymousPullView> {
    const previous = await this.anonymous.list();
    await this.anonymous.replace(patterns, this.clock.now());
    await this.audit.record(actor, 'admin.anonymous_pull.replaced', { previous, patterns });
    return { patterns: await this.anonymous.list() };
  }

  /**
   * New tokens are signed with a new key; the old keys stay published and accepted until every
   * token they signed has expired.
   */
  async rotateKeys(actor: Actor): Promise<RotatedKeyView> {
    const kid = await this.keys.rotate();
    await this.audit.record(actor, 'admin.keys.rotated', { kid });
    return { kid };
  }

  /** Every signing key with its state, newest first. */
  async listKeys(): Promise<SigningKeyView[]> {
    const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
    return (await this.keys.list()).map((k) => ({
      kid: k.kid,
      alg: k.alg,
      createdAt: new Date(k.createdAt).toISOString(),
      retiredAt: iso(k.retiredAt),
      revokedAt: iso(k.revokedAt),
      state: k.revokedAt !== undefined ? 'revoked' : k.retiredAt !== undefined ? 'retired' : 'active',
    }));
  }

  /**
   * Revokes a key after a leak: every token it signed, access and refresh, is refused from now on,
   * by this replica at once and by the others within `auth.keyRevocationCheckMs` (auth/keys.ts).
   * When it was the signing key, a new one signs from now on. 404 KEY_UNKNOWN for a kid that
   * names no key; revoking a revoked key again changes nothing.
   */
  async revokeKey(actor: Actor, kid: string): Promise<RevokedKeyView> {
    const known = (await this.keys.list()).find((k) => k.kid === kid);
    if (!known) throw new ApiError('KEY_UNKNOWN', `no signing key ${JSON.stringify(kid.slice(0, 128))}; list them with GET /api/v1/keys (berth keys list)`);
    const revoked = await this.keys.revoke(kid);
    const signing = await this.keys.signingKey();
    if (revoked) await this.audit.record(actor, 'admin.keys.revoked', { kid, signingKid: signing.kid });
    return { kid, signingKid: signing.kid };
  }
}
