import { z } from 'zod';
import { isRepositoryPattern } from '../../shared/glob.js';
import { duration } from '../fields.js';

/** One identity-bound rule (`attestations/policy.ts` evaluates it; docs/attestations.md). */
const ruleSchema = () =>
  z
    .object({
      name: z
        .string()
        .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/)
        .describe('Names the rule in refusals, the preview and the logs (lower case letters, digits, `.`, `_`, `-`).'),
      repositories: z
        .string()
        .refine(isRepositoryPattern, 'must be a repository pattern (`team/*`, `team/**`)')
        .describe('Repositories the rule governs: a repository pattern (`*` within one path component, `**` across components).'),
      tags: z
        .string()
        .min(1)
        .max(128)
        .default('*')
        .describe('At push: the tags the rule governs (a glob, `*` any run of characters). Pushes by digest and other tags are not refused by it.'),
      identity: z
        .record(z.string().min(1).max(128), z.string().min(1).max(512))
        .default({})
        .describe(
          'Conditions on who pushed, all of which must hold: claim name → glob (`*` any run of characters, `?` one). Claims are those of the federated login recorded in the push attestation (`iss`, `sub`, `repository`, `ref`, `job_workflow_ref`, …; `issuer` and `subject` are aliases of `iss` and `sub`), plus `principal` (the Berth principal name). Empty: any valid Berth push attestation.',
        ),
      keys: z
        .array(z.string().includes('-----BEGIN PUBLIC KEY-----'))
        .max(16)
        .default([])
        .describe(
          'PEM public keys (ECDSA P-256, Ed25519 or RSA) whose signature on an in-toto statement about the image (a Sigstore bundle referrer, as `cosign attest --key` writes) also satisfies the rule; the identity conditions do not apply to those.',
        ),
      enforce: z
        .object({
          pull: z
            .boolean()
            .default(true)
            .describe('Refuse manifest GET of images without a satisfying attestation (DENIED, with the reason); HEAD, which serves no content, is answered.'),
          push: z
            .boolean()
            .default(true)
            .describe(
              'Refuse a push of a matching tag unless the pusher matches the identity conditions, or the image already carries a satisfying attestation (as a copy by sync or import does).',
            ),
        })
        .default({})
        .describe('Where the rule is enforced.'),
    })
    .strict();

export const attestationsSection = () =>
  z
    .object({
      sign: z
        .enum(['off', 'federated', 'all'])
        .default('federated')
        .describe(
          'Which pushes get a signed push attestation (an in-toto statement in a Sigstore bundle, stored as a referrer of the image in the same transaction): `federated` every push that creates a tag or digest from a federated (OIDC) login; `all` also pushes by passwords and tokens; `off` none.',
        ),
      registryName: z
        .string()
        .max(255)
        .optional()
        .describe(
          "The registry's name in attestations (the statement subject's name and the predicate's `registry`); default: the host of `auth.publicUrl`, else the push request's Host header.",
        ),
      keyRotationMs: z
        .number()
        .int()
        .min(0)
        .default(90 * 24 * 3600 * 1000)
        .describe(
          'Sign with a new key once the active one is this old (0: only by hand, `POST /api/v1/attestations/keys/rotate`). Retired keys stay published at `/api/v1/attestations/keys`: attestations they signed remain verifiable.',
        ),
      verificationCacheMs: duration(
        'How long the server keeps the attestations it verified for an image (per repository and digest) when enforcing a rule at pull, so a manifest GET does not re-verify each time; a newly pushed attestation may take this long to count.',
        60_000,
      ),
      policies: z
        .array(ruleSchema())
        .max(256)
        .default([])
        .superRefine((rules, ctx) => {
          const names = new Set<string>();
          for (const [index, rule] of rules.entries()) {
            if (names.has(rule.name)) ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `duplicate rule name ${rule.name}` });
            names.add(rule.name);
          }
        })
        .describe('Identity-bound rules: images in matching repositories must carry a valid push attestation whose identity matches (docs/attestations.md).'),
    })
    .default({})
    .describe('Signed push attestations and the identity-bound policy enforced at pull and push (docs/attestations.md).');

export type AttestationRuleConfig = z.infer<ReturnType<typeof ruleSchema>>;
