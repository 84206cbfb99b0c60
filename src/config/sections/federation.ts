import { z } from 'zod';
import { duration } from '../fields.js';

const issuerSchema = () =>
  z
    .object({
      issuer: z.string().url().describe('The issuer URL, exactly as tokens carry it in `iss`.'),
      jwksUri: z.string().url().optional().describe('Fetch keys from here instead of OIDC discovery (`/.well-known/openid-configuration`).'),
      jwks: z
        .object({ keys: z.array(z.record(z.unknown())) })
        .optional()
        .describe('A static JWKS, for private clusters whose issuer Berth cannot reach (`kubectl get --raw /openid/v1/jwks`).'),
      jwksFile: z.string().optional().describe('A static JWKS read from this file (same use as `jwks`).'),
      caFile: z.string().optional().describe("PEM CA bundle to trust for this issuer's HTTPS endpoints."),
      allowInsecureLoopback: z
        .boolean()
        .default(false)
        .describe('Allow plain HTTP for this issuer; only ever honoured for loopback addresses (tests, local clusters).'),
      allowPrivateNetwork: z
        .boolean()
        .default(false)
        .describe(
          "Let discovery and key fetches for this issuer reach private, loopback and other non-public addresses, which the egress policy (`egress`) refuses otherwise (an in-cluster or on-premises issuer). Alternatively list the issuer's host in `egress.allow`.",
        ),
      maxTokenAgeMs: z.number().int().positive().optional().describe('Override `federation.maxTokenAgeMs` for this issuer.'),
    })
    .strict();

const federationSchema = () =>
  z
    .object({
      issuers: z
        .array(issuerSchema())
        .default([])
        .describe(
          'Settings for OIDC issuers that need them. Any HTTPS issuer a federated credential names is trusted through discovery without an entry here.',
        ),
      audience: z
        .string()
        .min(1)
        .max(512)
        .optional()
        .describe(
          'The audience that identifies this registry to OIDC issuers: presets default to it, and every Bearer challenge advertises it (`audience="…"`) so clients ask their issuer for it. Default: `auth.publicUrl` (e.g. `https://registry.example.com`), else a generated `urn:berth:<uuid>` kept in the database.',
        ),
      acceptLegacyAudience: z
        .boolean()
        .default(true)
        .describe(
          "Federated credentials that list `berth`, the audience every Berth used before instance audiences, also accept tokens whose audience is `berth` (with a warning in the log, once per credential and process). Such tokens are accepted by any Berth that trusts the same workload: turn this off once clients ask for this registry's audience. Credentials listing `berth` accept this registry's own audience either way.",
        ),
      clockSkewSeconds: z.number().int().min(0).max(300).default(60).describe('Allowed clock difference when checking `exp`, `nbf` and `iat` of OIDC tokens.'),
      maxTokenAgeMs: duration('OIDC tokens issued (`iat`) longer ago than this are refused, however long their `exp`.', 3600 * 1000),
      lifetimeCapMs: z
        .number()
        .int()
        .positive()
        .optional()
        .describe('Registry tokens bought with an OIDC token live at most this long. Unset: never longer than the OIDC token itself.'),
      discoveryTimeoutMs: duration("Timeout for fetching an issuer's discovery document and keys.", 5000),
      keyRefetchCooldownMs: z
        .number()
        .int()
        .min(0)
        .default(30_000)
        .describe("A token with an unknown `kid` makes Berth refetch the issuer's keys at most this often (issuer key rotation)."),
    })
    .default({})
    .describe('Workload identity federation: trust OIDC tokens from GitHub Actions, Kubernetes, GitLab or any issuer.');

export const federationSection = federationSchema;
