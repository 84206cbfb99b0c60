/**
 * The web console's session endpoints (`/console/session`, `/console/sso/…`; docs/console.md).
 * They are the console's own (a browser holds a cookie, not a token) and sit outside `/api/v1`;
 * everything else the console shows comes from `/api/v1` and `/v2`, called with the session.
 */
import { z } from 'zod';

/** The header that carries a session's CSRF token on every state-changing request. */
export const csrfHeader = 'x-berth-csrf';

export const consoleUrls = {
  session: () => '/console/session',
  ssoStart: (provider: string, returnTo?: string) =>
    `/console/sso/${encodeURIComponent(provider)}/start${returnTo ? `?return=${encodeURIComponent(returnTo)}` : ''}`,
  ssoCallback: (provider: string) => `/console/sso/${encodeURIComponent(provider)}/callback`,
};

/** POST /console/session */
export const signInInput = z
  .object({
    username: z.string().min(1).max(128),
    password: z.string().min(1).max(4096),
  })
  .strict();

export const sessionView = z.object({
  signedIn: z.boolean(),
  /** The single-sign-on providers to offer on the sign-in page. */
  providers: z.array(z.object({ name: z.string(), displayName: z.string() })),
  user: z
    .object({
      name: z.string(),
      kind: z.string(),
      method: z.enum(['password', 'sso']),
      provider: z.string().nullable(),
      expiresAt: z.string(),
      owner: z.boolean(),
      grants: z.array(z.object({ pattern: z.string(), permission: z.string() })),
    })
    .nullable(),
  /** Send this in the `X-Berth-CSRF` header with every POST, PUT, PATCH and DELETE. */
  csrfToken: z.string().nullable(),
});
export type SessionView = z.infer<typeof sessionView>;
