/** Principals: list, create (the first secret shown once), grants, secrets, federated credentials. */
import { useState } from 'preact/hooks';
import type { CreatedPrincipalView, FederatedCredentialBody, IssuedSecret, PrincipalView } from '../../../src/api/principals.js';
import { del, enc, get, patch, post, put } from '../api';
import { ConfirmButton, ErrorBox, Field, Loading, Notice, SecretOnce } from '../components';
import { when } from '../format';
import { useAction, useLoad } from '../hooks';
import { links, navigate } from '../router';

/** `pattern permission` per line → grants (and back). */
function parseGrants(text: string): Array<{ pattern: string; permission: string }> {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const [pattern = '', permission = ''] = line.split(/\s+/);
      return { pattern, permission };
    });
}
const grantsText = (grants: Array<{ pattern: string; permission: string }>) => grants.map((g) => `${g.pattern} ${g.permission}`).join('\n');

export function Principals() {
  const list = useLoad(() => get<{ principals: PrincipalView[] }>('/api/v1/principals'), []);
  const [kind, setKind] = useState<'user' | 'service' | 'token'>('user');
  const [name, setName] = useState('');
  const [grants, setGrants] = useState('');
  const [created, setCreated] = useState<CreatedPrincipalView | undefined>();
  const action = useAction();
  const create = async (event: Event) => {
    event.preventDefault();
    const result = await action.run(() => post<CreatedPrincipalView>('/api/v1/principals', { kind, ...(name ? { name } : {}), grants: parseGrants(grants) }));
    if (result) {
      setCreated(result);
      setName('');
      setGrants('');
      list.reload();
    }
  };
  return (
    <section aria-labelledby="principals-title">
      <h1 id="principals-title">Principals</h1>
      <ErrorBox message={list.error} />
      {list.loading && !list.data ? <Loading what="principals" /> : null}
      {list.data ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Kind</th>
                <th scope="col">Grants</th>
                <th scope="col">Secrets</th>
                <th scope="col">Federated</th>
              </tr>
            </thead>
            <tbody>
              {list.data.principals.map((p) => (
                <tr key={p.id}>
                  <th scope="row">
                    <a href={links.admin('principals', p.name)}>{p.name}</a> {p.disabled ? <span class="badge">disabled</span> : null}
                  </th>
                  <td>{p.kind}</td>
                  <td>{p.grants.map((g) => `${g.permission} on ${g.pattern}`).join(', ') || <span class="muted">none</span>}</td>
                  <td>{p.secrets.length}</td>
                  <td>{p.federatedCredentials.length}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <h2>New principal</h2>
      {created ? <SecretOnce title={`Secret ${created.secret.name} of ${created.principal.name}`} value={created.secret.value} /> : null}
      <form onSubmit={create} class="grid-form">
        <Field label="Kind">
          <select name="kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value as typeof kind)}>
            <option value="user">user (a person)</option>
            <option value="service">service (CI, workloads: may have federated credentials)</option>
            <option value="token">token (repository-scoped)</option>
          </select>
        </Field>
        <Field label="Name" hint={kind === 'service' ? 'Leave empty to get a generated client id.' : undefined}>
          <input name="name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} required={kind !== 'service'} />
        </Field>
        <Field label="Grants" hint="One per line: a repository pattern and a permission, e.g. “team/* push” or “** pull”.">
          <textarea name="grants" rows={3} value={grants} onInput={(e) => setGrants((e.target as HTMLTextAreaElement).value)} />
        </Field>
        <ErrorBox message={action.error} />
        <button type="submit" disabled={action.busy}>
          Create principal
        </button>
      </form>
    </section>
  );
}

export function Principal({ name }: { name: string }) {
  const principal = useLoad(() => get<PrincipalView>(`/api/v1/principals/${enc(name)}`), [name]);
  const action = useAction();
  const [grants, setGrants] = useState<string | undefined>();
  const [secret, setSecret] = useState<IssuedSecret | undefined>();
  const [secretName, setSecretName] = useState('');
  const [notice, setNotice] = useState<string | undefined>();
  const p = principal.data;
  const base = `/api/v1/principals/${enc(name)}`;
  const act = async (what: string, call: () => Promise<unknown>) => {
    setNotice(undefined);
    const ok = await action.run(async () => {
      await call();
      return true;
    });
    if (ok) {
      setNotice(what);
      principal.reload();
    }
  };
  return (
    <section aria-labelledby="principal-title">
      <p class="crumbs">
        <a href={links.admin('principals')}>Principals</a> /
      </p>
      <h1 id="principal-title">{name}</h1>
      <ErrorBox message={principal.error} />
      <ErrorBox message={action.error} />
      {notice ? <Notice>{notice}</Notice> : null}
      {p ? (
        <>
          <dl class="facts">
            <dt>Kind</dt>
            <dd>{p.kind}</dd>
            <dt>Id</dt>
            <dd>
              <code>{p.id}</code>
            </dd>
            <dt>Description</dt>
            <dd>{p.description ?? <span class="muted">none</span>}</dd>
            <dt>Created</dt>
            <dd>{when(p.createdAt)}</dd>
            <dt>Expires</dt>
            <dd>{p.expiresAt ? when(p.expiresAt) : 'never'}</dd>
            <dt>State</dt>
            <dd>
              {p.disabled ? 'disabled' : 'enabled'}{' '}
              <button
                type="button"
                class="small"
                onClick={() => act(p.disabled ? 'Enabled.' : 'Disabled; its refresh tokens are revoked.', () => patch(base, { disabled: !p.disabled }))}
              >
                {p.disabled ? 'Enable' : 'Disable'}
              </button>
            </dd>
          </dl>
          <h2>Grants</h2>
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void act('Grants saved.', () => put(`${base}/grants`, { grants: parseGrants(grants ?? grantsText(p.grants)) }));
              setGrants(undefined);
            }}
          >
            <Field label="Grants" hint="One per line: pattern and permission (pull, push, delete, owner, content/read, …).">
              <textarea
                name="grants"
                rows={Math.max(3, p.grants.length + 1)}
                value={grants ?? grantsText(p.grants)}
                onInput={(e) => setGrants((e.target as HTMLTextAreaElement).value)}
              />
            </Field>
            <button type="submit" disabled={action.busy}>
              Save grants
            </button>
          </form>
          <h2>Secrets</h2>
          {secret ? <SecretOnce title={`Secret ${secret.name}`} value={secret.value} /> : null}
          {p.secrets.length === 0 ? <p class="muted">No secrets{p.kind === 'user' ? ' (signs in with single sign-on only)' : ''}.</p> : null}
          <ul>
            {p.secrets.map((s) => (
              <li key={s.name}>
                <code>{s.name}</code> created {when(s.createdAt)}
                {s.expiresAt ? `, expires ${when(s.expiresAt)}` : ''}{' '}
                <ConfirmButton
                  label="Remove"
                  confirm={`Remove ${s.name}`}
                  onConfirm={() => act(`Secret ${s.name} removed.`, () => del(`${base}/secrets/${enc(s.name)}`))}
                />
              </li>
            ))}
          </ul>
          <form
            class="inline"
            onSubmit={async (e) => {
              e.preventDefault();
              const issued = await action.run(() => post<IssuedSecret>(`${base}/secrets`, secretName ? { name: secretName } : {}));
              if (issued) {
                setSecret(issued);
                setSecretName('');
                principal.reload();
              }
            }}
          >
            <Field label="Secret name" hint="Empty: the default name. An existing name is rotated.">
              <input name="secret-name" value={secretName} onInput={(e) => setSecretName((e.target as HTMLInputElement).value)} />
            </Field>
            <button type="submit" disabled={action.busy}>
              New secret
            </button>
          </form>
          {p.kind === 'service' ? (
            <FederatedCredentials
              principal={p}
              onChange={(what) => {
                setNotice(what);
                principal.reload();
              }}
            />
          ) : null}
          <h2>Delete</h2>
          <ConfirmButton
            label="Delete principal"
            confirm={`Delete ${p.name} for good`}
            onConfirm={async () => {
              const ok = await action.run(async () => {
                await del(base);
                return true;
              });
              if (ok) navigate(links.admin('principals'));
            }}
          />
        </>
      ) : null}
    </section>
  );
}

/** `claim=value`, `claim~glob`, `claim:a,b` per line (the CLI's syntax). */
function parseConditions(text: string) {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line) => {
      const m = /^([^=~:]+)([=~:])(.*)$/.exec(line);
      if (!m) return { claim: line, equals: '' };
      const [, claim = '', op, value = ''] = m;
      return op === '=' ? { claim, equals: value } : op === '~' ? { claim, glob: value } : { claim, oneOf: value.split(',') };
    });
}

function FederatedCredentials({ principal, onChange }: { principal: PrincipalView; onChange: (what: string) => void }) {
  const [form, setForm] = useState({ name: '', preset: 'github', repository: '', ref: '', issuer: '', subject: '', audiences: '', conditions: '' });
  const action = useAction();
  const base = `/api/v1/principals/${enc(principal.name)}/federated-credentials`;
  const set = (key: keyof typeof form) => (e: Event) => setForm({ ...form, [key]: (e.target as HTMLInputElement).value });
  const submit = async (event: Event) => {
    event.preventDefault();
    const body: FederatedCredentialBody = { name: form.name };
    if (form.preset !== 'custom') {
      body.preset = form.preset as 'github' | 'gitlab' | 'kubernetes';
      if (form.repository) body.repository = form.repository;
      if (form.ref) body.ref = form.ref;
      if (form.issuer) body.issuer = form.issuer;
    } else {
      body.issuer = form.issuer;
      body.subject = form.subject;
      body.audiences = form.audiences
        .split(',')
        .map((a) => a.trim())
        .filter(Boolean);
    }
    if (form.preset === 'kubernetes') {
      const [namespace, serviceAccount] = form.subject.split('/');
      if (namespace) body.namespace = namespace;
      if (serviceAccount) body.serviceAccount = serviceAccount;
    }
    if (form.conditions.trim()) body.conditions = parseConditions(form.conditions);
    const ok = await action.run(async () => {
      await post(base, body);
      return true;
    });
    if (ok) {
      onChange(`Federated credential ${form.name} saved.`);
      setForm({ ...form, name: '' });
    }
  };
  return (
    <section aria-labelledby="federated-title">
      <h2 id="federated-title">Federated credentials</h2>
      <p class="muted">
        Workloads (CI jobs, Kubernetes pods) sign in as {principal.name} with their OIDC token instead of a secret.{' '}
        <a href={links.admin('token-test')}>Test a token</a> against them.
      </p>
      {principal.federatedCredentials.length > 0 ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Issuer</th>
                <th scope="col">Subject</th>
                <th scope="col">Audiences</th>
                <th scope="col">Conditions</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {principal.federatedCredentials.map((c) => (
                <tr key={c.name}>
                  <th scope="row">{c.name}</th>
                  <td>
                    <code>{c.issuer}</code>
                  </td>
                  <td>
                    <code>{c.subject}</code>
                  </td>
                  <td>{c.audiences.join(', ')}</td>
                  <td>
                    {c.conditions
                      .map(
                        (k) =>
                          `${k.claim} ${k.equals !== undefined ? `= ${k.equals}` : k.glob !== undefined ? `~ ${k.glob}` : `in ${(k.oneOf ?? []).join(', ')}`}`,
                      )
                      .join('; ') || '—'}
                  </td>
                  <td>
                    <ConfirmButton
                      label="Remove"
                      confirm={`Remove ${c.name}`}
                      onConfirm={async () => {
                        const ok = await action.run(async () => {
                          await del(`${base}/${enc(c.name)}`);
                          return true;
                        });
                        if (ok) onChange(`Federated credential ${c.name} removed.`);
                      }}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="muted">None yet.</p>
      )}
      <form onSubmit={submit} class="grid-form">
        <Field label="Credential name">
          <input name="credential-name" required value={form.name} onInput={set('name')} />
        </Field>
        <Field label="Trust">
          <select name="preset" value={form.preset} onChange={set('preset')}>
            <option value="github">GitHub Actions</option>
            <option value="gitlab">GitLab CI</option>
            <option value="kubernetes">Kubernetes service account</option>
            <option value="custom">Any OIDC issuer</option>
          </select>
        </Field>
        {form.preset === 'github' || form.preset === 'gitlab' ? (
          <>
            <Field label="Repository" hint={form.preset === 'github' ? 'owner/repo (globs allowed)' : 'group/project'}>
              <input name="repository" required value={form.repository} onInput={set('repository')} />
            </Field>
            <Field label="Branch or ref" hint="Empty: any ref.">
              <input name="ref" value={form.ref} onInput={set('ref')} />
            </Field>
          </>
        ) : null}
        {form.preset !== 'github' ? (
          <Field label="Issuer" hint={form.preset === 'gitlab' ? 'Empty: gitlab.com' : 'The exact iss of the tokens (https://…)'}>
            <input name="issuer" value={form.issuer} required={form.preset !== 'gitlab'} onInput={set('issuer')} />
          </Field>
        ) : null}
        {form.preset === 'kubernetes' ? (
          <Field label="Namespace/service account" hint="e.g. ci/builder (service account optional)">
            <input name="subject" required value={form.subject} onInput={set('subject')} />
          </Field>
        ) : null}
        {form.preset === 'custom' ? (
          <>
            <Field label="Subject" hint="The exact sub, or a glob (*, ?)">
              <input name="subject" required value={form.subject} onInput={set('subject')} />
            </Field>
            <Field label="Audiences" hint="Comma-separated, e.g. berth">
              <input name="audiences" required value={form.audiences} onInput={set('audiences')} />
            </Field>
          </>
        ) : null}
        <Field label="Conditions" hint="Optional, one per line: claim=value, claim~glob or claim:a,b">
          <textarea name="conditions" rows={2} value={form.conditions} onInput={set('conditions')} />
        </Field>
        <ErrorBox message={action.error} />
        <button type="submit" disabled={action.busy}>
          Add federated credential
        </button>
      </form>
    </section>
  );
}
