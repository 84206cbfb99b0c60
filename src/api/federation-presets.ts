/**
 * Presets turn the common trust relationships into one line. They produce an ordinary federated
 * credential (issuer, audiences, subject, conditions): GitHub, Kubernetes and GitLab are data
 * here, not separate code paths.
 *
 * Subject formats come from each platform's documentation: GitHub `repo:<owner>/<repo>:ref:<ref>`
 * (or `:environment:<name>`, `:pull_request`), Kubernetes `system:serviceaccount:<ns>:<sa>`,
 * GitLab `project_path:<group>/<project>:ref_type:<type>:ref:<ref>`.
 */
import { defaultAudience } from './oidc.js';
import type { ClaimCondition } from './principals.js';

export const githubIssuer = 'https://token.actions.githubusercontent.com';
export const gitlabIssuer = 'https://gitlab.com';

export interface PresetInput {
  preset: 'github' | 'kubernetes' | 'gitlab';
  /** github: `owner/repo` (globs allowed, e.g. `acme/*`); gitlab: `group/project`. */
  repository?: string | undefined;
  /** github/gitlab: a branch (`main`) or full ref (`refs/tags/v*`); default any ref. */
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

function fullRef(ref: string): string {
  return ref.startsWith('refs/') || ref.includes('*') ? ref : `refs/heads/${ref}`;
}

function required(value: string | undefined, what: string): string {
  if (!value) throw new PresetError(`${what} is required`);
  return value;
}

export function expandPreset(input: PresetInput): FederatedTrust {
  const audiences = input.audiences && input.audiences.length > 0 ? input.audiences : [defaultAudience];
  const conditions = input.conditions ?? [];
  switch (input.preset) {
    case 'github': {
      const repository = required(input.repository, 'github preset: repository (owner/repo)');
      const which = input.environment ? `environment:${input.environment}` : input.ref ? `ref:${fullRef(input.ref)}` : '*';
      return { issuer: input.issuer ?? githubIssuer, audiences, subject: `repo:${repository}:${which}`, conditions };
    }
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
