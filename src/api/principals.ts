/**
 * The management API's wire contract for principals, their secrets and federated credentials
 * (`/api/v1/principals…`), shared by the server and the CLI (`berth admin`, `berth apply`).
 * Times are ISO 8601 strings, absent values `null`. Secret hashes never leave the server; a
 * secret's value appears only in the one response that created it.
 */
import { z } from 'zod';
import { isRepositoryPattern } from '../shared/glob.js';
import { timestamp } from './validation.js';

export type PrincipalKind = 'user' | 'admin' | 'service' | 'token';
export const principalKinds: readonly PrincipalKind[] = ['user', 'admin', 'service', 'token'];

/**
 * Login names (users, tokens, the admin user; service principals' chosen names): 1-128 letters,
 * digits, `.`, `_`, `@` or `-`, starting with a letter or digit. One definition for the server's
 * checks, `berth apply`'s file format and the CLI.
 */
export const principalNamePattern = /^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,127}$/;
export const principalNameRule = 'a name is 1-128 letters, digits, ., _, @ or -, starting with a letter or digit';

/** Docker's convention: this user name means "the password is a refresh token"; no principal may take it. */
export const refreshTokenUser = '00000000-0000-0000-0000-000000000000';

/** Why `name` cannot be a principal's login name, or undefined if it can. */
export function principalNameProblem(name: string): string | undefined {
  if (!principalNamePattern.test(name)) return principalNameRule;
  if (name === refreshTokenUser) return 'that name is reserved for refresh-token logins';
  return undefined;
}

/** Roles (Docker's actions bundled) and ACR scope-map actions: what a grant may give on a pattern. */
export const roles = ['pull', 'push', 'delete', 'owner'] as const;
export const scopeMapActions = ['content/read', 'content/write', 'content/delete', 'metadata/read', 'metadata/write'] as const;
export type Role = (typeof roles)[number];
export type ScopeMapAction = (typeof scopeMapActions)[number];
export type Permission = Role | ScopeMapAction;

const permissions: ReadonlySet<string> = new Set<string>([...roles, ...scopeMapActions]);

export function isPermission(value: string): value is Permission {
  return permissions.has(value);
}

/**
 * Repository patterns in grants and the anonymous-pull policy: the repository grammar plus `*`
 * (within one path component) and `**` (across components; `**` alone is the whole registry).
 */
/** True if `pattern` is a well-formed repository pattern (checked in linear time: `shared/glob.ts`). */
export function isValidPattern(pattern: string): boolean {
  return isRepositoryPattern(pattern);
}

export interface GrantView {
  pattern: string;
  permission: string;
}

export interface SecretView {
  name: string;
  expiresAt: string | null;
  createdAt: string;
}

export interface PrincipalView {
  id: string;
  kind: PrincipalKind;
  name: string;
  description: string | null;
  disabled: boolean;
  expiresAt: string | null;
  createdAt: string;
  /** The effective grants (the admin user always shows its fixed owner grant). */
  grants: GrantView[];
  secrets: SecretView[];
  /** Trust in OIDC tokens (service principals only; empty for the others), sorted by name. */
  federatedCredentials: FederatedCredentialView[];
}

/** Exactly one of `equals`, `glob`, `oneOf` is present. */
export interface ClaimConditionView {
  claim: string;
  equals?: string;
  glob?: string;
  oneOf?: string[];
}

export interface FederatedCredentialView {
  name: string;
  /** Tokens must carry exactly this `iss`. */
  issuer: string;
  /** Tokens must carry one of these in `aud`. */
  audiences: string[];
  /** The exact `sub`, or a glob (`*`, `?`). */
  subject: string;
  conditions: ClaimConditionView[];
  createdAt: string;
}

/** A claim condition in a request: exactly one of `equals`, `glob`, `oneOf`. */
export interface ClaimConditionInput {
  claim: string;
  equals?: string | undefined;
  glob?: string | undefined;
  oneOf?: string[] | undefined;
}

/** The body of POST …/federated-credentials: a preset's fields, or issuer + audiences + subject. */
export interface FederatedCredentialBody {
  name: string;
  preset?: 'github' | 'kubernetes' | 'gitlab';
  repository?: string;
  /** github: pin by the numeric `repository_id` / `repository_owner_id` claims. */
  repositoryId?: string;
  repositoryOwnerId?: string;
  ref?: string;
  environment?: string;
  issuer?: string;
  namespace?: string;
  serviceAccount?: string;
  audiences?: string[];
  subject?: string;
  conditions?: ClaimConditionInput[];
}

/** The one response that shows a secret's value. */
export interface IssuedSecret {
  name: string;
  value: string;
}

/** POST /api/v1/principals → 201. */
export interface CreatedPrincipalView {
  principal: PrincipalView;
  secret: IssuedSecret;
}

/** POST …/federated-credentials → 201. */
export interface PutFederatedCredentialView {
  credential: FederatedCredentialView;
  replaced: boolean;
}

/** A permission granted on a repository pattern; `**` means the whole registry. */
export interface Grant {
  /** A repository pattern; `**` means the whole registry. */
  pattern: string;
  permission: Permission;
}

/** The pattern that stands for the whole registry (and the catalog). */
export const registryScope = '**';

/** True if the grants make their holder an owner of the whole registry. */
export function isOwner(grants: readonly Grant[]): boolean {
  return grants.some((g) => g.permission === 'owner' && g.pattern === registryScope);
}

/** One condition on a token claim; exactly one of `equals`, `glob`, `oneOf` is set. */
export interface ClaimCondition {
  claim: string;
  equals?: string | undefined;
  glob?: string | undefined;
  oneOf?: string[] | undefined;
}

// ---------------------------------------------------------------------------------------------
// Request schemas of /api/v1/principals… (the server validates with these; the OpenAPI document is generated from them).

const maxGrants = 1000;

/** Login names: the rule PrincipalService enforces, applied to service principals' chosen names too. */
export const principalName = z.string().superRefine((name, ctx) => {
  const problem = principalNameProblem(name);
  if (problem !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
});

export const principalDescription = z.string().max(1000);

export const grantInput = z
  .object({
    pattern: z.string().refine(isValidPattern, (p) => ({ message: `invalid repository pattern ${JSON.stringify(p.slice(0, 100))}` })),
    permission: z.string().refine(isPermission, (p) => ({ message: `unknown role or action ${JSON.stringify(p.slice(0, 100))}` })),
  })
  .strict();

export const grantsInput = z.array(grantInput).max(maxGrants);

/** POST /api/v1/principals */
export const createPrincipalBody = z
  .object({
    kind: z.enum(['user', 'service', 'token']),
    name: principalName.optional(),
    description: principalDescription.optional(),
    grants: grantsInput.default([]),
    expiresAt: timestamp.optional(),
  })
  .strict();

/** PATCH /api/v1/principals/{principal} */
export const updatePrincipalBody = z
  .object({
    disabled: z.boolean().optional(),
    description: principalDescription.nullable().optional(),
    expiresAt: timestamp.nullable().optional(),
  })
  .strict();

/** PUT /api/v1/principals/{principal}/grants */
export const grantsBody = z.object({ grants: grantsInput }).strict();

/** POST /api/v1/principals/{principal}/secrets */
export const secretBody = z
  .object({
    name: z.string().max(63).optional(),
    expiresAt: timestamp.optional(),
  })
  .strict();
