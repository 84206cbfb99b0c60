/**
 * The wire contract of `POST /api/v1/federated-credentials/test` (owners): paste an OIDC token, or
 * just its claims, and see which federated credential would accept it, or exactly which check
 * fails, as the token endpoint would decide (`federation/token-test.ts`).
 */
import { z } from 'zod';

export const tokenTestInput = z
  .object({
    token: z.string().min(1).max(16_384).optional().describe('A compact JWT (an OIDC ID token from GitHub Actions, Kubernetes, …)'),
    claims: z
      .record(z.unknown())
      .optional()
      .describe("The token's claims as JSON, when the token itself should not be pasted (signature, expiry and age are then not checked)"),
    clientId: z.string().min(1).max(256).optional().describe('Consider only this principal (its name or client id), as a `client_id` in the exchange would'),
  })
  .strict()
  .refine((b) => (b.token === undefined) !== (b.claims === undefined), 'give a token or its claims (one of them)');
export type TokenTestInput = z.infer<typeof tokenTestInput>;

const checkNames = ['malformed', 'issuer', 'unavailable', 'signature', 'expired', 'age', 'audience', 'subject', 'condition', 'ambiguous'] as const;

export const tokenTestView = z.object({
  mode: z.enum(['token', 'claims']),
  issuer: z.string().nullable(),
  claims: z.record(z.unknown()).describe('The claims as read from the token (or as given)'),
  decision: z.object({
    accepted: z.boolean(),
    principal: z.object({ id: z.string(), name: z.string() }).nullable(),
    credential: z.string().nullable(),
    /** The failing check when refused. */
    check: z.enum(checkNames).nullable(),
    message: z.string().describe('What the token endpoint would answer, as a sentence'),
  }),
  /** Every credential trusting the issuer (of `clientId` only, when given), each check and its outcome. */
  candidates: z.array(
    z.object({
      principal: z.object({ id: z.string(), name: z.string() }),
      credential: z.string(),
      accepted: z.boolean(),
      checks: z.array(z.object({ check: z.enum(['audience', 'subject', 'condition']), ok: z.boolean(), detail: z.string() })),
    }),
  ),
  /** Checks that were not made (claims given instead of a token). */
  skipped: z.array(z.string()),
});
export type TokenTestView = z.infer<typeof tokenTestView>;
