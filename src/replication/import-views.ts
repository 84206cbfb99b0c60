/** Import jobs as the management API shows them (the wire type is `api/imports.ts`): credentials never, only where they come from. */
import type { ImportJobView } from '../api/imports.js';
import type { ImportJobRecord } from '../metadata/import-store.js';

export function importView(job: ImportJobRecord): ImportJobView {
  const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());
  return {
    id: job.id,
    status: job.status,
    source: { registry: job.spec.source.registry, repository: job.spec.source.repository, reference: job.spec.source.reference },
    targets: job.spec.targets.map((t) => ({ repository: t.repository, tags: [...t.tags] })),
    mode: job.spec.force ? 'Force' : 'NoForce',
    includeReferrers: job.spec.includeReferrers,
    requestedBy: job.requestedBy ?? null,
    attempts: job.attempts,
    createdAt: iso(job.createdAt) as string,
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    retryAt: job.status === 'queued' && job.error ? iso(job.notBefore) : null,
    progress: job.progress ?? null,
    result: job.result ?? null,
    error: job.error ?? null,
    credentials: job.hasCredentials ? 'request' : 'server',
  };
}
