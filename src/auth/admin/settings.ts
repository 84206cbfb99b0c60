/**
 * Registry-wide policy and operations through the management API: the anonymous-pull patterns and
 * signing-key rotation. Every change is audited.
 */
import type { AnonymousPullView, RotatedKeyView } from '../../api/audit.js';
import type { AnonymousPullIndex } from '../../metadata/auth-store.js';
import type { Actor } from '../../shared/actor.js';
import type { Clock } from '../../shared/clock.js';
import type { KeyRing } from '../keys.js';
import type { AuditLog } from './audit.js';

export class SettingsAdmin {
  constructor(
    private readonly anonymous: AnonymousPullIndex,
    private readonly keys: Pick<KeyRing, 'rotate'>,
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
}
