/**
 * Tag immutability and who may write tags: the pure decision for one tag of one push, shared by the
 * manifest push check (`enforcement.ts`) and anything that wants to explain a rule.
 *
 * A rule applies to a tag when its repository globs match the repository and its tag filters select
 * the tag (`selectors.ts`: fallback tags such as `sha256-<hex>.sig` only when a filter names them).
 * For each rule that applies:
 * - `immutable` (write-once): once the tag exists, it never points at another digest. Pushing the
 *   digest it already points at succeeds (a CI rerun stays idempotent); another digest is refused.
 *   The check is made before the push's transaction and again inside it (`writeOnce`), so two
 *   pushes racing to create the tag cannot both win.
 * - `writers`: only a push whose pusher matches one writer may create the tag (or move it, for a
 *   rule that is not immutable). A writer matches when the pusher's principal is one it names (if it
 *   names any) and every claim condition holds on the push's provenance (the OIDC claims of a
 *   federated login: `ref`, `environment`, `repository`, `workflow`, …), with the federated
 *   credentials' condition grammar (`federation/verifier.ts` `conditionHolds`). Re-pushing the
 *   digest a tag already points at creates nothing and is allowed to anyone with push.
 */
import type { ImmutabilityRule } from '../api/lifecycle.js';
import { showCondition } from '../api/lifecycle.js';
import { conditionHolds } from '../federation/verifier.js';
import type { Pusher } from '../metadata/store.js';
import { repositoryMatches, tagSelected } from './selectors.js';

export type Verdict =
  | { kind: 'allowed' }
  /** The tag exists with another digest and a rule makes it write-once. */
  | { kind: 'immutable'; rule: string; current: string }
  /** The push would create or move the tag, and the pusher is none of the rule's writers. */
  | { kind: 'writer'; rule: string; writers: string };

export interface TagDecision {
  verdict: Verdict;
  /** Some rule makes the tag write-once: the push's transaction must find it absent or already at the digest. */
  writeOnce: boolean;
}

/** The rules that apply to `tag` in `repository` (enabled ones only). */
export function rulesFor(rules: readonly ImmutabilityRule[], repository: string, tag: string): ImmutabilityRule[] {
  return rules.filter((rule) => rule.enabled && repositoryMatches(rule.repositories, repository) && tagSelected(rule.tags, tag));
}

/**
 * The decision for pushing `digest` to `tag`, which currently points at `current` (undefined:
 * the tag does not exist). The first refusing rule, in the order given, is the verdict.
 */
export function decideTag(
  rules: readonly ImmutabilityRule[],
  repository: string,
  tag: string,
  digest: string,
  current: string | undefined,
  pusher: Pusher | undefined,
): TagDecision {
  const applying = rulesFor(rules, repository, tag);
  const writeOnce = applying.some((rule) => rule.immutable);
  if (current === digest) return { verdict: { kind: 'allowed' }, writeOnce };
  for (const rule of applying) {
    if (rule.immutable && current !== undefined) return { verdict: { kind: 'immutable', rule: rule.name, current }, writeOnce };
    if (rule.writers && rule.writers.length > 0 && !rule.writers.some((writer) => writerMatches(writer, pusher))) {
      return { verdict: { kind: 'writer', rule: rule.name, writers: showWriters(rule) }, writeOnce };
    }
  }
  return { verdict: { kind: 'allowed' }, writeOnce };
}

type Writer = NonNullable<ImmutabilityRule['writers']>[number];

function writerMatches(writer: Writer, pusher: Pusher | undefined): boolean {
  if (!pusher) return false;
  if (writer.principals && writer.principals.length > 0 && !writer.principals.includes(pusher.principalName)) return false;
  const claims = pusher.provenance ?? {};
  return writer.conditions.every((condition) => conditionHolds(condition, claims));
}

/** The rule's writers for a message: `(ref matches refs/tags/*) or (principal ci-bot)`. */
export function showWriters(rule: ImmutabilityRule): string {
  return (rule.writers ?? [])
    .map((w) => {
      const parts = [...(w.principals && w.principals.length > 0 ? [`principal ${w.principals.join(' or ')}`] : []), ...w.conditions.map(showCondition)];
      return `(${parts.join(' and ')})`;
    })
    .join(' or ');
}

/** Claims worth naming when telling who pushed (the federated login's CI run). */
const shownClaims = ['repository', 'ref', 'environment', 'workflow', 'run_id', 'run_attempt', 'sha', 'project_path', 'pipeline_id', 'job_id'];

/** Who pushed, for a message: `ci-bot (repository=acme/app, ref=refs/tags/v1, run_id=42)`, or `anonymous` with auth off. */
export function describePusher(pusher: { principalName?: string | undefined; provenance?: Record<string, unknown> | undefined } | undefined): string {
  if (!pusher?.principalName) return 'an unauthenticated push (auth is off)';
  const claims = pusher.provenance ?? {};
  const named = shownClaims.filter((name) => typeof claims[name] === 'string' || typeof claims[name] === 'number');
  // Issuers without CI claims (a Kubernetes service account) are told by their subject.
  if (named.length === 0 && typeof claims['sub'] === 'string') named.push('sub');
  const shown = named.map((name) => `${name}=${String(claims[name])}`);
  return shown.length > 0 ? `${pusher.principalName} (${shown.join(', ')})` : pusher.principalName;
}
