/**
 * How Berth logs in to another registry it reads from: the request shape shared by the rules that
 * name an upstream (pull-through cache rules, and sync rules' `source.credentials`).
 *
 * - `anonymous`: no credentials.
 * - `basic`: a username and exactly one of `password` (stored as given, like every rule field),
 *   `passwordFile` (a path on the server, read when the upstream is contacted) or `passwordEnv`
 *   (a variable of the server's process). The references are resolved by the server
 *   (`sync/sources.ts`, `resolveSourceCredentials`), never sent back in a view.
 * - `oidc`: keyless: the workload token read from `tokenFile` (for example a projected Kubernetes
 *   service-account token) is exchanged at a Berth upstream whose federated credential trusts it.
 */
import { z } from 'zod';

export type UpstreamCredentials =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; password?: string; passwordFile?: string; passwordEnv?: string }
  | { kind: 'oidc'; clientId: string; tokenFile: string };

/** What a view shows of credentials: never the password, only where it comes from. */
export type UpstreamCredentialsView =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; passwordSource: 'stored' | 'file' | 'env'; passwordFile: string | null; passwordEnv: string | null }
  | { kind: 'oidc'; clientId: string; tokenFile: string };

const envName = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export const upstreamCredentialsInput = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('anonymous').describe('No credentials.') }).strict(),
    z
      .object({
        kind: z.literal('basic').describe('A username and a password (Basic auth, or the credentials for Docker token auth).'),
        username: z.string().min(1).max(256).describe('The username at the upstream.'),
        password: z.string().min(1).max(4096).optional().describe('The password itself (stored in the metadata database or the config file).'),
        passwordFile: z.string().min(1).max(1024).optional().describe('A file on the server holding the password, read when the upstream is contacted.'),
        passwordEnv: z
          .string()
          .regex(envName, 'an environment variable name')
          .optional()
          .describe("An environment variable of the server's process holding the password."),
      })
      .strict(),
    z
      .object({
        kind: z.literal('oidc').describe('Keyless: federation into a Berth upstream with a workload OIDC token.'),
        clientId: z.string().min(1).max(256).describe("The upstream Berth's service principal whose federated credential trusts the token."),
        tokenFile: z.string().min(1).max(1024).describe('The OIDC token file on the server, read afresh for every token request.'),
      })
      .strict(),
  ])
  .superRefine((c, ctx) => {
    if (c.kind === 'basic' && [c.password, c.passwordFile, c.passwordEnv].filter((v) => v !== undefined).length !== 1) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'basic credentials need exactly one of password, passwordFile or passwordEnv' });
    }
  })
  .transform((c): UpstreamCredentials => {
    if (c.kind !== 'basic') return c;
    const { kind, username, password, passwordFile, passwordEnv } = c;
    return {
      kind,
      username,
      ...(password !== undefined ? { password } : {}),
      ...(passwordFile !== undefined ? { passwordFile } : {}),
      ...(passwordEnv !== undefined ? { passwordEnv } : {}),
    };
  })
  .describe('How Berth logs in to the upstream: anonymous, basic (with a password, a password file or an environment variable) or oidc.');

/** The view of credentials: where the password comes from, never the password. */
export function upstreamCredentialsView(c: UpstreamCredentials): UpstreamCredentialsView {
  if (c.kind !== 'basic') return c;
  return {
    kind: 'basic',
    username: c.username,
    passwordSource: c.password !== undefined ? 'stored' : c.passwordFile !== undefined ? 'file' : 'env',
    passwordFile: c.passwordFile ?? null,
    passwordEnv: c.passwordEnv ?? null,
  };
}
