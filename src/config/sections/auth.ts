import { z } from 'zod';
import { duration } from '../fields.js';

const lifetime = () =>
  z
    .object({
      accessMs: duration('Access token lifetime.', 5 * 60 * 1000),
      refreshMs: duration('Refresh token lifetime.', 3 * 3600 * 1000),
    })
    .default({});

const authSchema = () =>
  z
    .object({
      enabled: z
        .boolean()
        .default(true)
        .describe(
          'Require tokens on the registry API. Turning it off makes every repository public and writable; Berth warns at start. Env BERTH_AUTH_ENABLED.',
        ),
      service: z.string().min(1).default('berth').describe('The token service name: `service` in challenges and `aud` of access tokens.'),
      issuer: z.string().min(1).default('berth').describe('`iss` of the tokens Berth signs.'),
      publicUrl: z
        .string()
        .url()
        .optional()
        .describe("Base URL clients reach Berth at, used for the token realm in challenges; default: from the request's Host header."),
      keyRevocationCheckMs: z
        .number()
        .int()
        .min(0)
        .max(60_000)
        .default(2000)
        .describe(
          'How long a replica may take to learn that another replica revoked a signing key (`berth keys revoke`): it re-reads the revoked keys at most this long after its last look. 0: on every token verification (one query each).',
        ),
      lifetimes: z
        .object({ user: lifetime(), admin: lifetime(), service: lifetime(), token: lifetime() })
        .default({})
        .describe('Token lifetimes per principal kind (user, admin user, service principal, repository-scoped token).'),
      adminUser: z
        .object({
          enabled: z.boolean().default(false).describe('Allow the admin user (one name, two passwords; owner rights).'),
          username: z.string().min(1).default('admin').describe("The admin user's login name."),
        })
        .default({})
        .describe('The admin user, off by default as in ACR.'),
      bootstrap: z
        .object({
          user: z.string().min(1).optional().describe('Owner created on first start when no principal exists. Env BERTH_BOOTSTRAP_USER.'),
          password: z
            .string()
            .min(12)
            .optional()
            .describe('Its password (min 12 characters); when unset one is generated and printed once. Env BERTH_BOOTSTRAP_PASSWORD.'),
        })
        .default({})
        .describe('The first owner credential.'),
      throttle: z
        .object({
          maxFailures: z
            .number()
            .int()
            .positive()
            .default(5)
            .describe(
              'Failed logins allowed for one principal name from one client address within the window; then that pair gets 429 until the window passes.',
            ),
          addressMaxFailures: z
            .number()
            .int()
            .positive()
            .default(20)
            .describe('Failed logins allowed from one client address, whatever the names, within the window (a password spray); then the address gets 429.'),
          principalMaxFailures: z
            .number()
            .int()
            .positive()
            .default(20)
            .describe(
              'Failed logins for one principal name from all addresses within the window after which the name is slowed, never locked: one attempt at a time and at most one per `slowedIntervalMs` (others get 429 with Retry-After), except from addresses it logged in from before.',
            ),
          windowMs: duration('Window for counting failed logins (it starts with the first failure).', 15 * 60 * 1000),
          slowedIntervalMs: duration('While a principal name is slowed: the least time between two attempts for it.', 2000),
          knownAddressTtlMs: duration(
            'How long an address a principal logged in from successfully is exempt from that name being slowed.',
            30 * 24 * 3600 * 1000,
          ),
        })
        .default({})
        .describe('Failed-login throttling.'),
    })
    .default({})
    .describe('The token service (Docker/OCI bearer-token auth).');

export const authSection = authSchema;
