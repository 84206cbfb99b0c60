/** Import jobs with live progress, a form to start one, and retry for failed ones. */
import { useState } from 'preact/hooks';
import type { ImportJobView } from '../../../src/api/imports.js';
import { enc, get, post } from '../api';
import { ErrorBox, Field, Loading, Notice, StatusBadge } from '../components';
import { bytes, when } from '../format';
import { useAction, useInterval, useLoad } from '../hooks';
import { links } from '../router';

export function Imports() {
  const jobs = useLoad(() => get<{ imports: ImportJobView[] }>('/api/v1/imports?limit=50'), []);
  const [form, setForm] = useState({ registry: '', image: '', tags: '' });
  const [notice, setNotice] = useState<string | undefined>();
  const action = useAction();
  const active = jobs.data?.imports.some((j) => j.status === 'queued' || j.status === 'running') ?? false;
  useInterval(jobs.reload, 1000, active);
  const submit = async (e: Event) => {
    e.preventDefault();
    setNotice(undefined);
    const job = await action.run(() =>
      post<ImportJobView>('/api/v1/import', {
        source: { ...(form.registry ? { registryUri: form.registry } : {}), sourceImage: form.image },
        targetTags: form.tags.split(/[\s,]+/).filter(Boolean),
      }),
    );
    if (job) {
      setNotice(`Import ${job.id} queued.`);
      jobs.reload();
    }
  };
  const retry = async (id: string) => {
    const job = await action.run(() => post<ImportJobView>(`/api/v1/imports/${enc(id)}/retry`));
    if (job) jobs.reload();
  };
  return (
    <section aria-labelledby="imports-title">
      <h1 id="imports-title">Imports</h1>
      <form onSubmit={submit} class="grid-form">
        <Field label="Source registry" hint="e.g. registry.example.com (empty: Docker Hub)">
          <input name="registry" value={form.registry} onInput={(e) => setForm({ ...form, registry: (e.target as HTMLInputElement).value })} />
        </Field>
        <Field label="Source image" hint="repository:tag or repository@digest">
          <input name="source-image" required value={form.image} onInput={(e) => setForm({ ...form, image: (e.target as HTMLInputElement).value })} />
        </Field>
        <Field label="Target tags" hint="repository:tag here, comma-separated (empty: same name)">
          <input name="target-tags" value={form.tags} onInput={(e) => setForm({ ...form, tags: (e.target as HTMLInputElement).value })} />
        </Field>
        <ErrorBox message={action.error} />
        <button type="submit" disabled={action.busy}>
          Import
        </button>
      </form>
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorBox message={jobs.error} />
      {jobs.loading && !jobs.data ? <Loading what="imports" /> : null}
      {jobs.data && jobs.data.imports.length === 0 ? <p class="muted">No imports yet.</p> : null}
      {jobs.data && jobs.data.imports.length > 0 ? (
        <div class="table-wrap" aria-live="polite">
          <table>
            <thead>
              <tr>
                <th scope="col">Source</th>
                <th scope="col">Targets</th>
                <th scope="col">Status</th>
                <th scope="col">Progress</th>
                <th scope="col">Started</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {jobs.data.imports.map((j) => (
                <tr key={j.id} data-import={j.id}>
                  <th scope="row">
                    {j.source.registry}/{j.source.repository}:{j.source.reference}
                  </th>
                  <td>
                    {j.targets.map((t) => (
                      <div key={t.repository}>
                        <a href={links.repository(t.repository)}>{t.repository}</a>
                        {t.tags.length > 0 ? `:${t.tags.join(',')}` : ''}
                      </div>
                    ))}
                  </td>
                  <td>
                    <StatusBadge status={j.status} />
                    {j.error ? <div class="error-text">{j.error.message}</div> : null}
                  </td>
                  <td>
                    {j.progress ? (
                      <>
                        <progress max={Math.max(1, j.progress.bytesTotal)} value={j.progress.bytesDone} aria-label="bytes copied" />{' '}
                        <span class="muted">
                          {bytes(j.progress.bytesDone)} of {bytes(j.progress.bytesTotal)}, {j.progress.blobsDone}/{j.progress.blobsTotal} blobs
                        </span>
                      </>
                    ) : j.result ? (
                      <span class="muted">
                        {j.result.blobsCopied} blobs copied, {j.result.blobsSkipped} already here
                      </span>
                    ) : (
                      '—'
                    )}
                  </td>
                  <td>{when(j.startedAt ?? j.createdAt)}</td>
                  <td>
                    {j.status === 'failed' ? (
                      <button type="button" class="small" onClick={() => retry(j.id)}>
                        Retry
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}
