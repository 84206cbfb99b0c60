/**
 * Presets turn the common trust relationships into one line. They produce an ordinary federated
 * credential (issuer, audiences, subject, conditions): GitHub, Kubernetes and GitLab are data
 * here, not separate code paths. Audiences default to the registry's own (`api/oidc.ts`), which
 * the caller passes in: the server its instance audience, `berth apply` the one the server
 * advertises.
 *
 * Subject formats come from each platform's documentation: Kubernetes
 * `system:serviceaccount:<ns>:<sa>`, GitLab `project_path:<group>/<project>:ref_type:<type>:ref:<ref>`,
 * and GitHub (see `github` below).
 */
import type { ClaimCondition } from './principals.js';

export const githubIssuer = 'https://token.actions.githubusercontent.com';
export const gitlabIssuer = 'https://gitlab.com';

export interface PresetInput {
  preset: 'github' | 'kubernetes' | 'gitlab';
  /**
   * github: `owner/repo` (globs allowed, e.g. `acme/*`), or the immutable form
   * `owner@<owner id>/repo@<repository id>`; gitlab: `group/project`.
   */
  repository?: string | undefined;
  /** github: pin the repository by its numeric id (the `repository_id` claim). */
  repositoryId?: string | undefined;
  /** github: pin the owner by its numeric id (the `repository_owner_id` claim). */
  repositoryOwnerId?: string | undefined;
  /** github/gitlab: a branch (`main`), a branch glob (`release-*`) or a full ref (`refs/tags/v*`); default any ref. */
  ref?: string | undefined;
  /** github: a deployment environment instead of a ref. */
  environment?: string | undefined;
  /** kubernetes: the cluster's issuer URL; gitlab: a self-managed instance (default gitlab.com). */
  issuer?: string | undefined;
  namespace?: string | undefined;
  serviceAccount?: string | undefined;
  audiences?: string[] | undefined;
  conditions?: ClaimCondition[] | undefined;
}

export interface FederatedTrust {
  issuer: string;
  audiences: string[];
  subject: string;
  conditions: ClaimCondition[];
}

export class PresetError extends Error {
  override name = 'PresetError';
}

/** A branch name or glob becomes `refs/heads/…`; a full ref (`refs/…`) stays as it is. */
function fullRef(ref: string): string {
  return ref.startsWith('refs/') ? ref : `refs/heads/${ref}`;
}

function required(value: string | undefined, what: string): string {
  if (!value) throw new PresetError(`${what} is required`);
  return value;
}

const numericId = /^[1-9][0-9]{0,19}$/;
const hasGlob = (text: string) => text.includes('*') || text.includes('?');

/** `owner/repo` or `owner@id/repo@id` (names may be globs) with the ids given either way. */
function githubRepository(input: PresetInput): { owner: string; name: string; ownerId: string | undefined; repositoryId: string | undefined } {
  const repository = required(input.repository, 'github preset: repository (owner/repo)');
  const parts = repository.split('/');
  if (parts.length !== 2 || repository.includes(':')) throw new PresetError(`github preset: repository ${JSON.stringify(repository)} is not owner/repo`);
  const [ownerPart = '', namePart = ''] = parts;
  const [owner = '', ownerIdInName, ...restOwner] = ownerPart.split('@');
  const [name = '', repositoryIdInName, ...restName] = namePart.split('@');
  if (!owner || !name || restOwner.length > 0 || restName.length > 0) {
    throw new PresetError(`github preset: repository ${JSON.stringify(repository)} is not owner/repo (or owner@ID/repo@ID)`);
  }
  const id = (given: string | undefined, inName: string | undefined, what: string): string | undefined => {
    for (const value of [given, inName]) {
      if (value !== undefined && !numericId.test(value)) throw new PresetError(`github preset: ${what} ${JSON.stringify(value)} is not a numeric id`);
    }
    if (given !== undefined && inName !== undefined && given !== inName)
      throw new PresetError(`github preset: ${what} ${given} contradicts the repository's @${inName}`);
    return given ?? inName;
  };
  return {
    owner,
    name,
    ownerId: id(input.repositoryOwnerId, ownerIdInName, 'repositoryOwnerId'),
    repositoryId: id(input.repositoryId, repositoryIdInName, 'repositoryId'),
  };
}

/**
 * GitHub Actions. GitHub documents two default subject forms (docs.github.com, "OpenID Connect
 * reference": the `sub` claim, and "Immutable subject claims", github/docs#45221; changelog
 * 2026-04-23 "Immutable subject claims for GitHub Actions OIDC tokens"):
 * - classic: `repo:OWNER/REPO:ref:refs/heads/main` (`:environment:NAME`, `:pull_request`);
 * - immutable, the default for repositories created, renamed or transferred after the cut-over and
 *   for those that opt in: `repo:OWNER@OWNER_ID/REPO@REPO_ID:…`, the ids appended with `@`.
 * Both forms carry the custom claims `repository` (`OWNER/REPO`), `repository_id` and
 * `repository_owner_id` (numeric ids as strings, which GitHub never reuses).
 *
 * The preset accepts both forms: the subject `repo:OWNER*\/REPO*:…` admits `OWNER` and
 * `OWNER@ID`, and the condition on `repository` pins the names exactly (the subject alone would
 * also admit `OWNERx/REPOy`). Given ids (`repositoryOwnerId`, `repositoryId`, or the
 * `owner@id/repo@id` form) become conditions on `repository_owner_id` and `repository_id`, so a
 * repository that later gets the same name (recycled after a rename or deletion) inherits nothing.
 */
function github(input: PresetInput, audiences: string[], conditions: ClaimCondition[]): FederatedTrust {
  const { owner, name, ownerId, repositoryId } = githubRepository(input);
  const which = input.environment ? `environment:${input.environment}` : input.ref ? `ref:${fullRef(input.ref)}` : '*';
  const repository = `${owner}/${name}`;
  const pinned: ClaimCondition[] = [hasGlob(repository) ? { claim: 'repository', glob: repository } : { claim: 'repository', equals: repository }];
  if (ownerId !== undefined) pinned.push({ claim: 'repository_owner_id', equals: ownerId });
  if (repositoryId !== undefined) pinned.push({ claim: 'repository_id', equals: repositoryId });
  return { issuer: input.issuer ?? githubIssuer, audiences, subject: `repo:${owner}*/${name}*:${which}`, conditions: [...pinned, ...conditions] };
}

/** The credential a preset stands for; `defaultAudience` (this registry's) when `audiences` are not given. */
export function expandPreset(input: PresetInput, defaultAudience: string): FederatedTrust {
  const audiences = input.audiences && input.audiences.length > 0 ? input.audiences : [defaultAudience];
  const conditions = input.conditions ?? [];
  switch (input.preset) {
    case 'github':
      return github(input, audiences, conditions);
    case 'kubernetes': {
      const issuer = required(input.issuer, "kubernetes preset: issuer (the cluster's service-account issuer URL)");
      const namespace = required(input.namespace, 'kubernetes preset: namespace');
      const serviceAccount = input.serviceAccount ?? '*';
      return { issuer, audiences, subject: `system:serviceaccount:${namespace}:${serviceAccount}`, conditions };
    }
    case 'gitlab': {
      const repository = required(input.repository, 'gitlab preset: repository (group/project)');
      const ref = input.ref ? `ref_type:${input.ref.startsWith('refs/tags/') ? 'tag' : 'branch'}:ref:${input.ref.replace(/^refs\/(heads|tags)\//, '')}` : '*';
      return { issuer: input.issuer ?? gitlabIssuer, audiences, subject: `project_path:${repository}:${ref}`, conditions };
    }
  }
}
