/**
 * Push provenance (the OIDC claims of the workload that pushed): shown as text, with links only
 * for issuers whose URL shapes are known (GitHub Actions, GitLab) and only from claims that match
 * those shapes exactly, so a claim can never become an arbitrary link.
 */
const githubIssuer = 'https://token.actions.githubusercontent.com';

function str(claims: Record<string, unknown>, name: string): string | undefined {
  const value = claims[name];
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined;
}

export interface ProvenanceLinks {
  source: string;
  run?: { text: string; href: string };
  commit?: { text: string; href: string };
}

export function provenanceLinks(claims: Record<string, unknown>): ProvenanceLinks | undefined {
  const iss = str(claims, 'iss');
  const repository = str(claims, 'repository');
  const sha = str(claims, 'sha');
  const runId = str(claims, 'run_id');
  const workflow = str(claims, 'workflow');
  if (iss === githubIssuer && repository && /^[\w.-]+\/[\w.-]+$/.test(repository)) {
    const out: ProvenanceLinks = { source: `GitHub Actions: ${repository}${workflow ? `, workflow ${workflow}` : ''}` };
    if (runId && /^\d+$/.test(runId)) out.run = { text: `run ${runId}`, href: `https://github.com/${repository}/actions/runs/${runId}` };
    if (sha && /^[0-9a-f]{7,64}$/.test(sha)) out.commit = { text: sha.slice(0, 12), href: `https://github.com/${repository}/commit/${sha}` };
    return out;
  }
  const project = str(claims, 'project_path');
  if (iss && project && /^https:\/\/[a-z0-9.-]+(?::\d+)?$/.test(iss) && /^[\w.-]+(?:\/[\w.-]+)+$/.test(project)) {
    const out: ProvenanceLinks = { source: `GitLab CI: ${project}` };
    const pipeline = str(claims, 'pipeline_id');
    if (pipeline && /^\d+$/.test(pipeline)) out.run = { text: `pipeline ${pipeline}`, href: `${iss}/${project}/-/pipelines/${pipeline}` };
    if (sha && /^[0-9a-f]{7,64}$/.test(sha)) out.commit = { text: sha.slice(0, 12), href: `${iss}/${project}/-/commit/${sha}` };
    return out;
  }
  return undefined;
}

export function Provenance({ claims }: { claims: Record<string, unknown> | null }) {
  if (!claims) return <span class="muted">—</span>;
  const known = provenanceLinks(claims);
  const sub = str(claims, 'sub');
  return (
    <span class="provenance">
      {known ? (
        <>
          <span>{known.source}</span>
          {known.run ? (
            <>
              {' · '}
              <a href={known.run.href} target="_blank" rel="noopener noreferrer">
                {known.run.text}
              </a>
            </>
          ) : null}
          {known.commit ? (
            <>
              {' · commit '}
              <a href={known.commit.href} target="_blank" rel="noopener noreferrer">
                {known.commit.text}
              </a>
            </>
          ) : null}
        </>
      ) : (
        <span>{sub ?? 'federated workload'}</span>
      )}
      <details>
        <summary>claims</summary>
        <dl class="claims">
          {Object.entries(claims).map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{typeof v === 'string' ? v : JSON.stringify(v)}</dd>
            </div>
          ))}
        </dl>
      </details>
    </span>
  );
}
