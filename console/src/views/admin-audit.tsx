/** The audit log with filters: principal (server-side), event and text (over what was loaded). */
import { useState } from 'preact/hooks';
import type { AuditEntryView } from '../../../src/api/audit.js';
import { get } from '../api';
import { ErrorBox, Field, Loading } from '../components';
import { when } from '../format';
import { useLoad } from '../hooks';

export function AuditLog() {
  const [principal, setPrincipal] = useState('');
  const [applied, setApplied] = useState({ principal: '', limit: 200 });
  const [event, setEvent] = useState('');
  const log = useLoad(() => {
    const params = new URLSearchParams({ limit: String(applied.limit) });
    if (applied.principal) params.set('principal', applied.principal);
    return get<{ entries: AuditEntryView[] }>(`/api/v1/audit?${params}`);
  }, [applied]);
  const events = [...new Set((log.data?.entries ?? []).map((e) => e.event))].sort();
  const shown = (log.data?.entries ?? []).filter((e) => !event || e.event === event);
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit log</h1>
      <form
        class="grid-form"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied({ ...applied, principal: principal.trim() });
        }}
      >
        <Field label="Principal" hint="A name or id; empty: everyone.">
          <input name="principal" value={principal} onInput={(e) => setPrincipal((e.target as HTMLInputElement).value)} />
        </Field>
        <Field label="Event">
          <select name="event" value={event} onChange={(e) => setEvent((e.target as HTMLSelectElement).value)}>
            <option value="">all events</option>
            {events.map((e) => (
              <option key={e} value={e}>
                {e}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Entries">
          <select name="limit" value={String(applied.limit)} onChange={(e) => setApplied({ ...applied, limit: Number((e.target as HTMLSelectElement).value) })}>
            <option value="100">latest 100</option>
            <option value="200">latest 200</option>
            <option value="1000">latest 1000</option>
          </select>
        </Field>
        <button type="submit">Apply</button>
      </form>
      <ErrorBox message={log.error} />
      {log.loading && !log.data ? <Loading what="the audit log" /> : null}
      {log.data ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Event</th>
                <th scope="col">Who</th>
                <th scope="col">From</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((e) => (
                <tr key={e.id}>
                  <td>{when(e.at)}</td>
                  <td>
                    <code>{e.event}</code>
                  </td>
                  <td>{e.principalName ?? <span class="muted">—</span>}</td>
                  <td>{e.clientAddress ?? ''}</td>
                  <td>
                    <code class="detail">{e.detail === null || e.detail === undefined ? '' : JSON.stringify(e.detail)}</code>
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
