/** Sync rules and, per rule, the status of every image it copies. */
import type { SyncRuleView, SyncStatusView } from '../../../src/api/sync.js';
import { enc, get, post } from '../api';
import { ErrorBox, Loading, Notice } from '../components';
import { shortDigest, when } from '../format';
import { useAction, useInterval, useLoad } from '../hooks';
import { links } from '../router';
import { useState } from 'preact/hooks';

export function SyncRules() {
  const list = useLoad(() => get<{ rules: SyncRuleView[] }>('/api/v1/sync/rules'), []);
  return (
    <section aria-labelledby="sync-title">
      <h1 id="sync-title">Sync rules</h1>
      <p class="muted">Rules are created with `berth sync` or `POST /api/v1/sync/rules`; here you follow them and run them.</p>
      <ErrorBox message={list.error} />
      {list.loading && !list.data ? <Loading what="sync rules" /> : null}
      {list.data && list.data.rules.length === 0 ? <p class="muted">No sync rules.</p> : null}
      {list.data && list.data.rules.length > 0 ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Rule</th>
                <th scope="col">Source</th>
                <th scope="col">Repositories</th>
                <th scope="col">Last sync</th>
                <th scope="col">Last error</th>
              </tr>
            </thead>
            <tbody>
              {list.data.rules.map((r) => (
                <tr key={r.name}>
                  <th scope="row">
                    <a href={links.admin('sync', r.name)}>{r.name}</a> {r.enabled ? null : <span class="badge">disabled</span>}
                  </th>
                  <td>
                    <code>{r.source.url}</code>
                  </td>
                  <td>{r.repositories.join(', ')}</td>
                  <td>{when(r.state.lastSyncAt)}</td>
                  <td>{r.state.lastError ?? <span class="muted">none</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

export function SyncRule({ name }: { name: string }) {
  const status = useLoad(() => get<SyncStatusView>(`/api/v1/sync/rules/${enc(name)}/status?limit=500`), [name]);
  const action = useAction();
  const [notice, setNotice] = useState<string | undefined>();
  useInterval(status.reload, 2000, (status.data?.queue.pending ?? 0) + (status.data?.queue.running ?? 0) > 0 || (status.data?.rule.state.reconciling ?? false));
  const run = async () => {
    const result = await action.run(() => post(`/api/v1/sync/rules/${enc(name)}/run`));
    if (result) {
      setNotice('Run requested: the status below follows it.');
      status.reload();
    }
  };
  const data = status.data;
  return (
    <section aria-labelledby="rule-title">
      <p class="crumbs">
        <a href={links.admin('sync')}>Sync rules</a> /
      </p>
      <h1 id="rule-title">{name}</h1>
      <ErrorBox message={status.error} />
      <ErrorBox message={action.error} />
      {notice ? <Notice>{notice}</Notice> : null}
      <button type="button" onClick={run} disabled={action.busy}>
        Run now
      </button>
      {data ? (
        <>
          <dl class="facts">
            <dt>Source</dt>
            <dd>
              <code>{data.rule.source.url}</code>
            </dd>
            <dt>Last reconcile</dt>
            <dd>
              {when(data.rule.state.lastReconcileAt)}
              {data.rule.state.lastReconcileError ? `: ${data.rule.state.lastReconcileError}` : ''}
            </dd>
            <dt>Queue</dt>
            <dd>
              {data.queue.pending} pending, {data.queue.running} running, {data.queue.failing} failing
            </dd>
          </dl>
          <h2>Images</h2>
          {data.images.length === 0 ? <p class="muted">No image copied yet.</p> : null}
          {data.images.length > 0 ? (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Image</th>
                    <th scope="col">Here</th>
                    <th scope="col">Digest</th>
                    <th scope="col">Last sync</th>
                    <th scope="col">Error</th>
                  </tr>
                </thead>
                <tbody>
                  {data.images.map((i) => (
                    <tr key={`${i.repository}:${i.tag}`}>
                      <th scope="row">
                        {i.repository}:{i.tag}
                      </th>
                      <td>
                        <a href={links.repository(i.destination)}>{i.destination}</a>
                      </td>
                      <td>{i.digest ? <code>{shortDigest(i.digest)}</code> : '—'}</td>
                      <td>{when(i.lastSyncAt)}</td>
                      <td>{i.lastError ?? <span class="muted">none</span>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
