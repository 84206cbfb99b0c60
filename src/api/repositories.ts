/** The wire contract of GET /api/v1/repositories/{name}/history (`berth history`). */
import type { AttestationSummaryView } from './attestations.js';

/** One push of a manifest (by tag, or by digest with `tag: null`), newest first in a history. */
export interface PushView {
  digest: string;
  tag: string | null;
  at: string;
  /** Who pushed; null when the registry ran without auth. */
  principal: { id: string; name: string } | null;
  /** For pushes with a federated login: the OIDC token's identifying claims (iss, sub, repository, sha, run_id, …). */
  provenance: Record<string, unknown> | null;
}

export interface HistoryView {
  repository: string;
  pushes: PushView[];
  /** Per digest in `pushes`: whether it carries a valid push attestation (verified now, by the server). */
  attestations: Record<string, AttestationSummaryView>;
}
