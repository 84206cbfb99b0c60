import { z } from 'zod';
import { isRepositoryPattern } from '../../shared/glob.js';
import { duration } from '../fields.js';

/** A condition on one claim: exactly one of equals, glob, oneOf (the shape of federated credentials' conditions). */
const claimCondition = () =>
  z
    .object({
      claim: z.string().min(1).max(256).describe('The claim name (`email`, `groups`, `hd`, …).'),
      equals: z.string().max(1024).optional().describe('The claim is exactly this.'),
      glob: z.string().max(1024).optional().describe('The claim matches this glob (`*` any run of characters, `?` one).'),
      oneOf: z.array(z.string().max(1024)).min(1).max(100).optional().describe('The claim is one of these.'),
    })
    .strict()
    .refine((c) => [c.equals, c.glob, c.oneOf].filter((v) => v !== undefined).length === 1, 'a condition has exactly one of equals, glob or oneOf');

const grantSchema = () =>
  z
    .object({
      pattern: z
        .string()
        .refine(isRepositoryPattern, 'an invalid repository pattern')
        .describe('A repository pattern (`*` within a path component, `**` across; `**` alone is the whole registry).'),
      permission: z.string().min(1).describe('A role (`pull`, `push`, `delete`, `owner`) or an ACR scope-map action (`content/read`, …).'),
    })
    .strict();

const ruleSchema = () =>
  z
    .object({
      claims: z
        .array(claimCondition())
        .min(1)
        .max(20)
        .describe(
          'Conditions on the ID token claims, all of which must hold: `{claim, equals}`, `{claim, glob}` (`*`, `?`) or `{claim, oneOf}`. For a list claim such as `groups`, a condition holds when any entry meets it.',
        ),
      grants: z.array(grantSchema()).min(1).max(100).describe('What a person whose claims meet the conditions is granted.'),
    })
    .strict();

const providerSchema = () =>
  z
    .object({
      name: z
        .string()
        .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'a provider name is 1-32 lowercase letters, digits or -')
        .describe('A short name: it appears in the redirect URI (`/console/sso/<name>/callback`) and in the audit log.'),
      displayName: z.string().min(1).max(64).optional().describe('The button text on the sign-in page (default: the name).'),
      issuer: z
        .string()
        .url()
        .describe(
          'The OpenID provider, exactly as its ID tokens carry it in `iss`; its discovery document is read from `<issuer>/.well-known/openid-configuration`.',
        ),
      clientId: z.string().min(1).max(512).describe('The client id Berth is registered with at the provider.'),
      clientSecretFile: z
        .string()
        .optional()
        .describe('A file holding the client secret (confidential clients). Without it Berth signs in as a public client with PKCE alone.'),
      scopes: z
        .array(z.string().regex(/^[\x21-\x7e]+$/))
        .default(['openid', 'email', 'profile'])
        .describe('Scopes asked for (`openid` is always added).'),
      usernameClaim: z
        .string()
        .min(1)
        .default('email')
        .describe('The claim that names the person in Berth (their principal name, shown in the audit log and push history): `email`, `preferred_username`, …'),
      rules: z
        .array(ruleSchema())
        .max(200)
        .default([])
        .describe(
          "Claim-to-grant rules, evaluated at every sign-in: the person's grants are the union of the grants of every rule whose conditions hold. A person no rule matches cannot sign in.",
        ),
      allowInsecureLoopback: z
        .boolean()
        .default(false)
        .describe(
          'Allow plain HTTP and a loopback address for this provider (tests, a provider on the same machine); the egress policy refuses both otherwise.',
        ),
    })
    .strict();

const consoleSchema = () =>
  z
    .object({
      enabled: z.boolean().default(true).describe('Serve the web console at `/` (and its sign-in endpoints under `/console/`).'),
      sessionLifetimeMs: duration('A console session ends this long after sign-in, however active.', 12 * 3600 * 1000),
      idleTimeoutMs: duration('A console session unused this long ends.', 3600 * 1000),
      assetsDir: z.string().optional().describe('Serve the console from this directory instead of the built-in `dist/web` (development).'),
      sso: z
        .array(providerSchema())
        .max(20)
        .default([])
        .refine((list) => new Set(list.map((p) => p.name)).size === list.length, 'provider names must be unique')
        .describe(
          'OpenID Connect providers people sign in with (authorization code flow with PKCE). Register `<publicUrl>/console/sso/<name>/callback` as the redirect URI.',
        ),
    })
    .default({})
    .describe('The web console: a browser UI over `/api/v1` and `/v2`, with password and single sign-on sessions (docs/console.md).');

export const consoleSection = consoleSchema;
