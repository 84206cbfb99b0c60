/** Webhooks: subscriptions, their deliveries with attempt details, redelivery and ping. */
import { useState } from 'preact/hooks';
import type { DeliveryDetailView, DeliveryView, WebhookView, WebhookWithSecretView } from '../../../src/api/webhooks.js';
import { enc, get, post } from '../api';
import { ErrorBox, Field, JsonText, Loading, Notice, SecretOnce, StatusBadge } from '../components';
import { when } from '../format';
import { useAction, useInterval, useLoad } from '../hooks';
import { links } from '../router';

export function Webhooks() {
  const list = useLoad(() => get<{ webhooks: WebhookView[] }>('/api/v1/webhooks'), []);
  const [form, setForm] = useState({ name: '', url: '', events: 'push,delete' });
  const [created, setCreated] = useState<WebhookWithSecretView | undefined>();
  const action = useAction();
  const create = async (e: Event) => {
    e.preventDefault();
    const result = await action.run(() =>
      post<WebhookWithSecretView>('/api/v1/webhooks', {
        name: form.name,
        url: form.url,
        events: form.events
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean),
      }),
    );
    if (result) {
      setCreated(result);
      list.reload();
    }
  };
  return (
    <section aria-labelledby="webhooks-title">
      <h1 id="webhooks-title">Webhooks</h1>
      <ErrorBox message={list.error} />
      {list.loading && !list.data ? <Loading what="webhooks" /> : null}
      {list.data && list.data.webhooks.length === 0 ? <p class="muted">No webhooks yet.</p> : null}
      {list.data && list.data.webhooks.length > 0 ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">URL</th>
                <th scope="col">Events</th>
                <th scope="col">Filters</th>
                <th scope="col">State</th>
              </tr>
            </thead>
            <tbody>
              {list.data.webhooks.map((w) => (
                <tr key={w.id}>
                  <th scope="row">
                    <a href={links.admin('webhooks', w.name)}>{w.name}</a>
                  </th>
                  <td>
                    <code>{w.url}</code>
                  </td>
                  <td>{w.events.join(', ')}</td>
                  <td>{w.filters.join(', ') || 'all'}</td>
                  <td>{w.enabled ? 'enabled' : 'disabled'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <h2>New webhook</h2>
      {created ? <SecretOnce title={`Signing secret of ${created.webhook.name}`} value={created.secret} /> : null}
      <form onSubmit={create} class="grid-form">
        <Field label="Name">
          <input name="webhook-name" required value={form.name} onInput={(e) => setForm({ ...form, name: (e.target as HTMLInputElement).value })} />
        </Field>
        <Field label="URL">
          <input name="webhook-url" type="url" required value={form.url} onInput={(e) => setForm({ ...form, url: (e.target as HTMLInputElement).value })} />
        </Field>
        <Field label="Events" hint="push, delete, ping (comma-separated)">
          <input name="webhook-events" value={form.events} onInput={(e) => setForm({ ...form, events: (e.target as HTMLInputElement).value })} />
        </Field>
        <ErrorBox message={action.error} />
        <button type="submit" disabled={action.busy}>
          Create webhook
        </button>
      </form>
    </section>
  );
}

export function Webhook({ name }: { name: string }) {
  const base = `/api/v1/webhooks/${enc(name)}`;
  const webhook = useLoad(() => get<WebhookView>(base), [name]);
  const deliveries = useLoad(() => get<{ deliveries: DeliveryView[] }>(`${base}/deliveries?limit=50`), [name]);
  const [open, setOpen] = useState<string | undefined>();
  const [notice, setNotice] = useState<string | undefined>();
  const action = useAction();
  // Pending deliveries change on their own: follow them until they settle.
  useInterval(deliveries.reload, 2000, deliveries.data?.deliveries.some((d) => d.status === 'pending') ?? false);
  const redeliver = async (id: string) => {
    setNotice(undefined);
    const result = await action.run(() => post<{ delivery: DeliveryView }>(`${base}/deliveries/${enc(id)}/redeliver`));
    if (result) {
      setNotice(`Delivery ${id} queued again (attempt cycle ${result.delivery.cycle}).`);
      deliveries.reload();
    }
  };
  const ping = async () => {
    const result = await action.run(() => post<{ delivery: DeliveryView }>(`${base}/ping`));
    if (result) {
      setNotice('Ping queued.');
      deliveries.reload();
    }
  };
  return (
    <section aria-labelledby="webhook-title">
      <p class="crumbs">
        <a href={links.admin('webhooks')}>Webhooks</a> /
      </p>
      <h1 id="webhook-title">{name}</h1>
      <ErrorBox message={webhook.error ?? deliveries.error} />
      <ErrorBox message={action.error} />
      {notice ? <Notice>{notice}</Notice> : null}
      {webhook.data ? (
        <dl class="facts">
          <dt>URL</dt>
          <dd>
            <code>{webhook.data.url}</code>
          </dd>
          <dt>Events</dt>
          <dd>{webhook.data.events.join(', ')}</dd>
          <dt>Format</dt>
          <dd>{webhook.data.format}</dd>
        </dl>
      ) : null}
      <button type="button" onClick={ping} disabled={action.busy}>
        Send a ping
      </button>
      <h2>Deliveries</h2>
      {deliveries.data && deliveries.data.deliveries.length === 0 ? <p class="muted">No deliveries yet.</p> : null}
      {deliveries.data && deliveries.data.deliveries.length > 0 ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Event</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Last answer</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {deliveries.data.deliveries.map((d) => (
                <tr key={d.id}>
                  <td>{when(d.createdAt)}</td>
                  <td>
                    {d.action} {d.repository ?? ''}
                    {d.tags.length > 0 ? `:${d.tags.join(',')}` : ''}
                  </td>
                  <td>
                    <StatusBadge status={d.status} />
                  </td>
                  <td>
                    {d.attempts} (cycle {d.cycle})
                  </td>
                  <td>{d.lastAttempt ? (d.lastAttempt.statusCode !== null ? `HTTP ${d.lastAttempt.statusCode}` : (d.lastAttempt.error ?? '—')) : '—'}</td>
                  <td class="actions">
                    <button type="button" class="small" aria-expanded={open === d.id} onClick={() => setOpen(open === d.id ? undefined : d.id)}>
                      Details
                    </button>
                    {d.status !== 'pending' ? (
                      <button type="button" class="small" onClick={() => redeliver(d.id)} disabled={action.busy}>
                        Redeliver
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {open ? <DeliveryDetail base={base} id={open} /> : null}
    </section>
  );
}

function DeliveryDetail({ base, id }: { base: string; id: string }) {
  const detail = useLoad(() => get<DeliveryDetailView>(`${base}/deliveries/${enc(id)}`), [base, id]);
  return (
    <section aria-labelledby="delivery-title" class="panel">
      <h3 id="delivery-title">Delivery {id}</h3>
      <ErrorBox message={detail.error} />
      {detail.data ? (
        <>
          <ol class="attempts">
            {detail.data.attemptHistory.map((a) => (
              <li key={`${a.cycle}-${a.attempt}`}>
                Cycle {a.cycle}, attempt {a.attempt} at {when(a.at)}: {a.ok ? 'delivered' : 'failed'}
                {a.statusCode !== null ? ` (HTTP ${a.statusCode})` : ''}
                {a.error ? `: ${a.error}` : ''} <span class="muted">{a.latencyMs} ms</span>
                {a.responseSnippet ? <pre class="json">{a.responseSnippet}</pre> : null}
              </li>
            ))}
          </ol>
          <details>
            <summary>Payload</summary>
            <JsonText value={detail.data.payload} />
          </details>
        </>
      ) : null}
    </section>
  );
}
