/**
 * The retention planner: given a rule and what one repository holds (a snapshot), which manifests
 * and tags the rule deletes, in which order, and why. A pure function of (rule, snapshot, now):
 * the preview (API, `berth lifecycle preview`) and the runs that delete both call it, so what a
 * preview lists is what a run with the same snapshot deletes. The pull-through cache uses it too
 * (last-pull eviction is a rule with `notPulledFor`).
 *
 * Vocabulary:
 * - An **image** is a root manifest: one no other manifest of the repository lists (an index's
 *   platform manifests are part of their index's image) and that describes nothing present (a
 *   referrer whose `subject` is in the repository, or an artifact tagged `sha256-<hex>.sig`-style
 *   for a digest in the repository, goes with that manifest's image).
 * - A **candidate** is an image the rule governs: one of its tags is selected by the rule's tag
 *   filters, or it is untagged and the rule says `untagged: true`. Its **push time** is the latest
 *   push of a selected tag (of the manifest, for an untagged image); its **last pull** the latest
 *   pull of the manifest or any of its platform manifests (never pulled: its push time).
 * - Conditions hold or not per candidate: `keepNewest: N` holds for a candidate that is not among
 *   the newest N (by push time), `olderThan` for one pushed longer ago, `notPulledFor` for one not
 *   pulled for that long. `match: all` expires a candidate when every given condition holds, `any`
 *   when at least one does.
 *
 * What an expired candidate loses: if it also has tags the rule does not select, only the selected
 * tags (`untag`; the image stays); otherwise the manifest with every tag (`delete`), followed by
 * what goes with it: its platform manifests that no remaining manifest lists and no tag names, and
 * the referrers and fallback-tagged artifacts that describe a deleted manifest (signatures, SBOMs,
 * attestations), always after the manifest they describe, never before.
 *
 * Safety, whatever the conditions say:
 * - a write-once tag (an immutability rule's) is never removed: it counts as not selected, so an
 *   image it names keeps its manifest;
 * - nothing pushed within the minimum age is touched: an expired candidate is kept when a tag it
 *   would lose, or any manifest of its image (referrers included), was pushed within it;
 * - a repository never loses its last image unless the rule says `allowEmpty: true`: when the plan
 *   would delete every image, the newest expired one is kept.
 */
import type { RetentionRule } from '../api/lifecycle.js';
import { formatDuration } from '../api/lifecycle.js';
import { describedDigest, isFallbackTag, tagSelected } from './selectors.js';

export interface SnapshotManifest {
  digest: string;
  mediaType: string;
  size: number;
  /** When the manifest first arrived in the repository. */
  createdAt: number;
  subject: string | undefined;
  artifactType: string | undefined;
  /** Child manifests it lists (an index's platform manifests). */
  children: readonly string[];
  lastPulledAt: number | undefined;
}

export interface SnapshotTag {
  name: string;
  digest: string;
  /** When the tag was last pushed (a push of the same digest refreshes it). */
  updatedAt: number;
}

/** What one repository holds, read at `at`. */
export interface RepositorySnapshot {
  repository: string;
  at: number;
  manifests: readonly SnapshotManifest[];
  tags: readonly SnapshotTag[];
}

export interface PlannedAction {
  /** `delete`: the manifest with every tag on it; `untag`: only `tags`. */
  action: 'delete' | 'untag';
  digest: string;
  /** `delete`: every tag the manifest had when planned; `untag`: the tags to remove. */
  tags: string[];
  reason: string;
  /** A dependent's deletion needs these deleted first (its listers, or what it describes): skipped if one was kept. */
  dependsOn: string[];
}

export interface ProtectedImage {
  digest: string;
  tags: string[];
  reason: string;
}

export interface RepositoryPlan {
  repository: string;
  /** When the snapshot was read: a run deletes only what has not been pushed again since. */
  snapshotAt: number;
  candidates: number;
  /** In execution order: an image before what goes with it. */
  actions: PlannedAction[];
  /** Expired candidates a safety rule keeps. */
  protected: ProtectedImage[];
}

export interface PlanOptions {
  /** Nothing pushed more recently than this is touched (the rule's `minimumAge`, at least the configured floor). */
  minimumAgeMs: number;
  /** Tags a rule may never remove (write-once tags of an immutability rule): they count as not selected. */
  isProtectedTag?: ((tag: string) => boolean) | undefined;
}

interface Candidate {
  root: SnapshotManifest;
  tags: string[];
  selected: string[];
  pushedAt: number;
  lastPulledAt: number | undefined;
  /** The latest push of anything the image would lose (tags, its manifests, its referrers). */
  lastActivity: number;
}

/** Why a condition holds, or undefined when it does not (or the rule does not set it). */
type Check = (candidate: Candidate, rank: number, now: number) => string | undefined;

function conditionChecks(rule: RetentionRule): Check[] {
  const { keepNewest, olderThan, notPulledFor } = rule.conditions;
  const checks: Check[] = [];
  if (keepNewest !== undefined) checks.push((_c, rank) => (rank >= keepNewest ? `not among the newest ${keepNewest} (number ${rank + 1})` : undefined));
  if (olderThan !== undefined) {
    checks.push((c, _rank, now) => (now - c.pushedAt > olderThan ? `pushed ${ago(now - c.pushedAt)} ago (olderThan ${formatDuration(olderThan)})` : undefined));
  }
  if (notPulledFor !== undefined) {
    checks.push((c, _rank, now) => {
      const since = c.lastPulledAt ?? c.pushedAt;
      if (now - since <= notPulledFor) return undefined;
      const what = c.lastPulledAt === undefined ? `never pulled, pushed ${ago(now - c.pushedAt)} ago` : `last pulled ${ago(now - since)} ago`;
      return `${what} (notPulledFor ${formatDuration(notPulledFor)})`;
    });
  }
  return checks;
}

/** The plan of `rule` for one repository (see the module comment). */
export function planRepository(rule: RetentionRule, snapshot: RepositorySnapshot, now: number, options: PlanOptions): RepositoryPlan {
  const graph = new RepositoryGraph(snapshot);
  const selector = rule.tags;
  const candidates: Candidate[] = [];
  for (const root of graph.roots) {
    const tags = graph.tagsOf(root.digest);
    const selected = tags.filter((tag) => tagSelected(selector, tag) && !options.isProtectedTag?.(tag)).sort();
    if (tags.length > 0 ? selected.length === 0 : !rule.untagged) continue;
    const pushedAt = selected.length > 0 ? Math.max(...selected.map((t) => graph.tagTime(t))) : root.createdAt;
    candidates.push({ root, tags, selected, pushedAt, lastPulledAt: graph.lastPull(root), lastActivity: graph.lastActivity(root, selected) });
  }
  // Newest first; equal times by digest, so every plan of one snapshot is the same plan.
  candidates.sort((a, b) => b.pushedAt - a.pushedAt || (a.root.digest < b.root.digest ? -1 : 1));

  const checks = conditionChecks(rule);
  const any = rule.match === 'any';
  const expired: Array<{ candidate: Candidate; reason: string }> = [];
  const kept: ProtectedImage[] = [];
  candidates.forEach((candidate, rank) => {
    const reasons = checks.map((check) => check(candidate, rank, now));
    const holding = reasons.filter((r): r is string => r !== undefined);
    if (any ? holding.length === 0 : holding.length < checks.length) return;
    const reason = holding.join(any ? '; ' : ' and ');
    const age = now - candidate.lastActivity;
    if (age < options.minimumAgeMs) {
      kept.push({
        digest: candidate.root.digest,
        tags: candidate.selected,
        reason: `${reason}, but pushed ${ago(age)} ago (minimum age ${formatDuration(options.minimumAgeMs)})`,
      });
      return;
    }
    expired.push({ candidate, reason });
  });

  // Images that lose every tag lose their manifest; the others only their selected tags.
  const deleting = expired.filter(({ candidate }) => candidate.selected.length === candidate.tags.length);
  if (!rule.allowEmpty && deleting.length > 0 && deleting.length === graph.roots.length) {
    const newest = deleting.shift() as (typeof deleting)[number];
    kept.push({
      digest: newest.candidate.root.digest,
      tags: newest.candidate.tags,
      reason: `${newest.reason}, but it is the last image of the repository (allowEmpty is false)`,
    });
  }
  const deletingRoots = new Set(deleting.map(({ candidate }) => candidate.root.digest));
  const actions: PlannedAction[] = [];
  for (const { candidate, reason } of expired) {
    if (deletingRoots.has(candidate.root.digest)) continue;
    if (candidate.selected.length === candidate.tags.length) continue; // kept as the last image
    actions.push({ action: 'untag', digest: candidate.root.digest, tags: candidate.selected, reason, dependsOn: [] });
  }
  actions.push(...graph.deletionOrder(deleting.map(({ candidate, reason }) => ({ digest: candidate.root.digest, reason }))));
  return { repository: snapshot.repository, snapshotAt: snapshot.at, candidates: candidates.length, actions, protected: kept };
}

/** The relations between a repository's manifests and tags that the planner walks. */
class RepositoryGraph {
  readonly manifests = new Map<string, SnapshotManifest>();
  readonly roots: SnapshotManifest[] = [];
  private readonly tagsByDigest = new Map<string, string[]>();
  private readonly tagTimes = new Map<string, number>();
  /** Child → the manifests that list it. */
  private readonly parents = new Map<string, string[]>();
  /** Manifest → what describes it: referrers (`subject`) and fallback-tagged artifacts. */
  private readonly describers = new Map<string, Array<{ digest: string; how: string }>>();

  constructor(snapshot: RepositorySnapshot) {
    for (const m of snapshot.manifests) this.manifests.set(m.digest, m);
    for (const tag of snapshot.tags) {
      if (!this.manifests.has(tag.digest)) continue;
      push(this.tagsByDigest, tag.digest, tag.name);
      this.tagTimes.set(tag.name, tag.updatedAt);
    }
    for (const m of this.manifests.values()) {
      for (const child of new Set(m.children)) if (this.manifests.has(child)) push(this.parents, child, m.digest);
    }
    const describing = new Set<string>();
    for (const m of this.manifests.values()) {
      if (m.subject !== undefined && m.subject !== m.digest && this.manifests.has(m.subject)) {
        push(this.describers, m.subject, { digest: m.digest, how: `referrer${m.artifactType ? ` (${m.artifactType})` : ''}` });
        describing.add(m.digest);
        continue;
      }
      // Tagged only with fallback tags for a manifest present here: cosign's `.sig`/`.att`/`.sbom`.
      const tags = this.tagsByDigest.get(m.digest) ?? [];
      const described =
        tags.length > 0 && tags.every(isFallbackTag) ? tags.map(describedDigest).find((d) => d !== undefined && this.manifests.has(d)) : undefined;
      if (described !== undefined && described !== m.digest) {
        push(this.describers, described, { digest: m.digest, how: `artifact tagged ${tags.join(', ')}` });
        describing.add(m.digest);
      }
    }
    for (const m of this.manifests.values()) if (!this.parents.has(m.digest) && !describing.has(m.digest)) this.roots.push(m);
  }

  tagsOf(digest: string): string[] {
    return this.tagsByDigest.get(digest) ?? [];
  }

  tagTime(tag: string): number {
    return this.tagTimes.get(tag) ?? 0;
  }

  /** The latest pull of the manifest or any manifest it lists (recursively). */
  lastPull(root: SnapshotManifest): number | undefined {
    let latest: number | undefined;
    for (const m of this.walk(root.digest, false))
      if (m.lastPulledAt !== undefined && (latest === undefined || m.lastPulledAt > latest)) latest = m.lastPulledAt;
    return latest;
  }

  /** The latest push of what the image would lose: the given tags and every manifest of the image, describers included. */
  lastActivity(root: SnapshotManifest, tags: readonly string[]): number {
    let latest = 0;
    for (const m of this.walk(root.digest, true)) {
      latest = Math.max(latest, m.createdAt);
      // Tags on dependents (a fallback tag, a platform manifest's own tag) go with them too.
      if (m.digest !== root.digest) for (const tag of this.tagsOf(m.digest)) latest = Math.max(latest, this.tagTime(tag));
    }
    for (const tag of tags) latest = Math.max(latest, this.tagTime(tag));
    return latest;
  }

  /**
   * The manifests to delete, starting from `roots`, in an order where each comes after every
   * deleted manifest that lists it or that it describes: the roots (in the order given), then,
   * repeatedly, a platform manifest all of whose listers are deleted and that no tag names, and
   * a describer (referrer, fallback-tagged artifact) of a deleted manifest that no other tag names.
   */
  deletionOrder(roots: ReadonlyArray<{ digest: string; reason: string }>): PlannedAction[] {
    const deleted = new Set<string>();
    const actions: PlannedAction[] = [];
    const queue: Array<{ digest: string; reason: string; dependsOn: string[] }> = roots.map((root) => ({ ...root, dependsOn: [] }));
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const { digest, reason, dependsOn } = next;
      if (deleted.has(digest)) continue;
      deleted.add(digest);
      actions.push({ action: 'delete', digest, tags: [...this.tagsOf(digest)].sort(), reason, dependsOn });
      const manifest = this.manifests.get(digest);
      for (const child of new Set(manifest?.children ?? [])) {
        if (deleted.has(child) || !this.manifests.has(child) || this.tagsOf(child).length > 0) continue;
        const parents = this.parents.get(child) ?? [];
        if (parents.every((parent) => deleted.has(parent)))
          queue.push({ digest: child, reason: `listed by ${short(digest)}, deleted`, dependsOn: [...parents] });
      }
      for (const { digest: describer, how } of this.describers.get(digest) ?? []) {
        if (deleted.has(describer) || this.tagsOf(describer).some((t) => !isFallbackTag(t))) continue;
        queue.push({ digest: describer, reason: `${how} of ${short(digest)}, deleted`, dependsOn: [digest] });
      }
    }
    return actions;
  }

  /** The manifest and what it lists, recursively (with `describers`, also what describes any of them). */
  private *walk(digest: string, describers: boolean): Generator<SnapshotManifest> {
    const seen = new Set<string>();
    const stack = [digest];
    for (let at = stack.pop(); at !== undefined; at = stack.pop()) {
      if (seen.has(at)) continue;
      seen.add(at);
      const m = this.manifests.get(at);
      if (!m) continue;
      yield m;
      stack.push(...m.children);
      if (describers) for (const d of this.describers.get(at) ?? []) stack.push(d.digest);
    }
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function short(digest: string): string {
  return digest.length > 19 ? `${digest.slice(0, 19)}…` : digest;
}

/** A span for people, rounded down to its largest unit (`3d`, `5h`, `12m`, `40s`). */
export function ago(ms: number): string {
  const spans: Array<[string, number]> = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  for (const [unit, size] of spans) if (ms >= size) return `${Math.floor(ms / size)}${unit}`;
  return `${Math.max(0, Math.floor(ms))}ms`;
}
