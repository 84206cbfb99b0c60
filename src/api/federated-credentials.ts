import { z } from 'zod';
import type { ClaimCondition } from './principals.js';
import { isLoopbackUrl } from '../shared/loopback.js';
import { expandPreset, type FederatedTrust } from './federation-presets.js';

/**
 * Federated credentials as people write them: one declaration shape, shared by berth.yaml
 * (`federatedCredentials:` of a service) and the management API
 * (`POST /principals/{p}/federated-credentials`), so a file entry and an API body are validated by
 * the same rules. A preset (github, kubernetes, gitlab) or the explicit form (issuer, audiences,
 * subject); conditions in either.
 */

export const federatedPresets = ['github', 'kubernetes', 'gitlab'] as const;

const conditionKinds = ['equals', 'glob', 'oneOf'] as const;

/** One condition on a claim of the OIDC token: exactly one of equals, glob (`*`, `?`) or oneOf. */
export const claimConditionInput = z
  .object({
    claim: z.string().min(1, 'a condition names a claim').max(256),
    equals: z.string().max(1024).optional(),
    glob: z.string().max(1024).optional(),
    oneOf: z.array(z.string().max(1024)).min(1, 'oneOf lists at least one value').max(100).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const set = conditionKinds.filter((k) => c[k] !== undefined);
    if (set.length !== 1) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `a condition has exactly one of equals, glob or oneOf (this one has ${set.length === 0 ? 'none' : set.join(' and ')})`,
      });
    }
  });

export const federatedCredentialName = z
  .string()
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/, 'a federated credential name is 1-64 letters, digits, ., _ or -, starting with a letter or digit');

const presetFields = ['repository', 'repositoryId', 'repositoryOwnerId', 'ref', 'environment', 'namespace', 'serviceAccount'] as const;
/** Which preset uses which of the preset-only fields, and which it cannot do without. */
const presetUses: Record<(typeof federatedPresets)[number], { uses: readonly string[]; needs: readonly string[] }> = {
  github: { uses: ['repository', 'repositoryId', 'repositoryOwnerId', 'ref', 'environment', 'issuer'], needs: ['repository'] },
  kubernetes: { uses: ['issuer', 'namespace', 'serviceAccount'], needs: ['issuer', 'namespace'] },
  gitlab: { uses: ['repository', 'ref', 'issuer'], needs: ['repository'] },
};
const presetHelp: Record<string, string> = {
  repository: 'owner/repo (globs allowed)',
  issuer: "the cluster's service-account issuer URL",
  namespace: 'the Kubernetes namespace',
};

/**
 * An issuer is what tokens carry in `iss`: an https URL without query, fragment or credentials;
 * plain http only for a loopback host (whether it is allowed then is the server's configuration:
 * `federation.issuers[].allowInsecureLoopback`).
 */
export function issuerProblem(issuer: string): string | undefined {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return 'the issuer is not a URL (expected https://…)';
  }
  if (url.search || url.hash || url.username || url.password) return 'the issuer URL has no query, fragment or credentials';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackUrl(url)) return undefined;
  return 'the issuer must be an https URL (plain http only for a loopback issuer configured with allowInsecureLoopback)';
}

export const federatedCredentialInput = z
  .object({
    name: federatedCredentialName,
    preset: z.enum(federatedPresets).optional(),
    repository: z.string().min(1).max(256).optional(),
    repositoryId: z
      .string()
      .regex(/^[1-9][0-9]{0,19}$/, 'a numeric id (the repository_id claim)')
      .optional(),
    repositoryOwnerId: z
      .string()
      .regex(/^[1-9][0-9]{0,19}$/, 'a numeric id (the repository_owner_id claim)')
      .optional(),
    ref: z.string().min(1).max(256).optional(),
    environment: z.string().min(1).max(256).optional(),
    issuer: z.string().max(2048).optional(),
    namespace: z.string().min(1).max(256).optional(),
    serviceAccount: z.string().min(1).max(256).optional(),
    audiences: z
      .array(z.string().min(1, 'an audience is a non-empty string').max(512))
      .min(1, "give at least one audience (a preset defaults to this registry's audience when audiences is left out)")
      .max(20)
      .optional(),
    subject: z.string().min(1, 'the subject is a non-empty string (an exact sub, or a glob)').max(1024).optional(),
    conditions: z.array(claimConditionInput).max(50).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, path: [path], message });
    if (c.issuer !== undefined) {
      const problem = issuerProblem(c.issuer);
      if (problem) issue('issuer', problem);
    }
    if (c.preset === undefined) {
      for (const field of presetFields) if (c[field] !== undefined) issue(field, 'only with a preset (github, kubernetes or gitlab)');
      if (c.issuer === undefined) issue('issuer', 'required without a preset');
      if (c.audiences === undefined) issue('audiences', "required without a preset (e.g. this registry's audience, as its 401 challenge names it)");
      if (c.subject === undefined) issue('subject', 'required without a preset (the exact sub, or a glob)');
      return;
    }
    if (c.subject !== undefined) issue('subject', `the ${c.preset} preset builds the subject; leave it out, or write the credential without a preset`);
    const { uses, needs } = presetUses[c.preset];
    for (const field of presetFields) if (c[field] !== undefined && !uses.includes(field)) issue(field, `not used by the ${c.preset} preset`);
    for (const field of needs) {
      if (c[field as keyof typeof c] === undefined) issue(field, `the ${c.preset} preset needs ${field}${presetHelp[field] ? ` (${presetHelp[field]})` : ''}`);
    }
    if (c.ref !== undefined && c.environment !== undefined) issue('environment', 'give ref or environment, not both (the subject names one)');
  });

export type FederatedCredentialInput = z.output<typeof federatedCredentialInput>;

/**
 * What a valid declaration trusts: the preset expanded (audiences defaulting to `defaultAudience`,
 * the registry's own), conditions reduced to their one test.
 */
export function resolveFederatedCredential(input: FederatedCredentialInput, defaultAudience: string): FederatedTrust {
  const conditions = (input.conditions ?? []).map(canonicalCondition);
  if (input.preset === undefined) {
    return { issuer: input.issuer ?? '', audiences: [...(input.audiences ?? [])], subject: input.subject ?? '', conditions };
  }
  return expandPreset(
    {
      preset: input.preset,
      repository: input.repository,
      repositoryId: input.repositoryId,
      repositoryOwnerId: input.repositoryOwnerId,
      ref: input.ref,
      environment: input.environment,
      issuer: input.issuer,
      namespace: input.namespace,
      serviceAccount: input.serviceAccount,
      audiences: input.audiences,
      conditions,
    },
    defaultAudience,
  );
}

/** `{claim, equals}`, `{claim, glob}` or `{claim, oneOf}`: only the test that is set. */
export function canonicalCondition(c: ClaimCondition): ClaimCondition {
  if (c.equals !== undefined) return { claim: c.claim, equals: c.equals };
  if (c.glob !== undefined) return { claim: c.claim, glob: c.glob };
  return { claim: c.claim, oneOf: [...(c.oneOf ?? [])] };
}

/** `subject from issuer (audiences a, b; if claim=value, claim~glob, claim:a,b)`. */
export function showTrust(c: { issuer: string; subject: string; audiences: readonly string[]; conditions: readonly ClaimCondition[] }): string {
  const conditions = c.conditions.length > 0 ? `; if ${showConditions(c.conditions)}` : '';
  return `${c.subject} from ${c.issuer} (audiences ${showList(c.audiences)}${conditions})`;
}

/** The CLI's `--condition` syntax: `claim=value`, `claim~glob`, `claim:a,b,c`. */
export function showCondition(c: ClaimCondition): string {
  if (c.equals !== undefined) return `${c.claim}=${c.equals}`;
  if (c.glob !== undefined) return `${c.claim}~${c.glob}`;
  return `${c.claim}:${(c.oneOf ?? []).join(',')}`;
}

export function showConditions(conditions: readonly ClaimCondition[]): string {
  return conditions.length > 0 ? conditions.map(showCondition).sort().join(', ') : 'none';
}

export function showList(values: readonly string[]): string {
  return [...new Set(values)].sort().join(', ');
}
