/**
 * The web console's server side: sessions (`sessions.ts`), single sign-on (`sso.ts`) and the
 * browsing views of `/api/v1/repositories…` (`repositories.ts`). Built by `createApp`; the static
 * assets are read from disk by the HTTP layer on first request, never at start.
 */
import type { Auth } from '../auth/index.js';
import type { Config } from '../config/schema.js';
import type { Metadata } from '../metadata/store.js';
import type { Egress } from '../net/egress.js';
import type { Registry } from '../registry/index.js';
import type { Clock } from '../shared/clock.js';
import { RepositoryViews } from './repositories.js';
import { ConsoleSessions } from './sessions.js';
import { SingleSignOn } from './sso.js';

export { RepositoryViews } from './repositories.js';
export { ConsoleSessions, type ActiveSession } from './sessions.js';
export { SingleSignOn, SsoFailure, type PendingSignIn } from './sso.js';

export interface Console {
  /** False when `console.enabled` is off or the token service is (nobody could be told apart). */
  enabled: boolean;
  settings: Config['console'];
  sessions: ConsoleSessions;
  sso: SingleSignOn;
  close(): Promise<void>;
}

export function createConsole(deps: { config: Config; metadata: Metadata; auth: Auth; egress: Egress; clock: Clock }): Console {
  const { config, metadata, auth, egress, clock } = deps;
  const sessions = new ConsoleSessions({ store: metadata.console, principals: metadata.auth.principals, auth, clock, settings: config.console });
  const sso = new SingleSignOn({
    providers: config.console.sso,
    egress,
    identities: metadata.console.identities,
    principals: metadata.auth.principals,
    auth,
    clock,
  });
  return {
    enabled: config.console.enabled && auth.enabled,
    settings: config.console,
    sessions,
    sso,
    close: () => sso.close(),
  };
}

export function createRepositoryViews(registry: Registry): RepositoryViews {
  return new RepositoryViews(registry);
}
