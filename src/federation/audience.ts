/**
 * This registry's audience: what OIDC tokens meant for it carry in `aud`, what presets default to
 * and what every Bearer challenge advertises (api/oidc.ts). It must identify this installation, so
 * that a token a workload got for another registry is refused here:
 * `federation.audience` if configured, else `auth.publicUrl` (its origin and path, no trailing
 * slash), else `urn:berth:<uuid>`, generated once and kept in the database, so every replica and
 * every restart uses the same one.
 */
import { randomUUID } from 'node:crypto';
import type { InstanceSettingsIndex } from '../metadata/auth-store.js';
import type { Clock } from '../shared/clock.js';

/** The instance setting that holds a generated audience. */
const generatedAudienceSetting = 'federation.audience';

/** The audience the configuration names, if any: `federation.audience`, else `auth.publicUrl`. */
export function configuredAudience(audience: string | undefined, publicUrl: string | undefined): string | undefined {
  if (audience !== undefined) return audience;
  if (publicUrl === undefined) return undefined;
  const url = new URL(publicUrl);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

export class InstanceAudience {
  private value: Promise<string> | undefined;

  constructor(
    private readonly configured: string | undefined,
    private readonly store: InstanceSettingsIndex,
    private readonly clock: Clock,
  ) {}

  /** The audience (read from the database once per process when it is a generated one). */
  get(): Promise<string> {
    if (this.configured !== undefined) return Promise.resolve(this.configured);
    this.value ??= this.store.getOrCreate(generatedAudienceSetting, `urn:berth:${randomUUID()}`, this.clock.now()).catch((err: unknown) => {
      this.value = undefined;
      throw err;
    });
    return this.value;
  }
}
