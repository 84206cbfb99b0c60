/** "Test a token": paste an OIDC token (or its claims) and read which credential accepts it, or which check fails. */
import { useState } from 'preact/hooks';
import type { TokenTestView } from '../../../src/api/federation-test.js';
import { post } from '../api';
import { ErrorBox, Field, JsonText } from '../components';
import { useAction } from '../hooks';
import { links } from '../router';

export function TokenTest() {
  const [text, setText] = useState('');
  const [clientId, setClientId] = useState('');
  const [result, setResult] = useState<TokenTestView | undefined>();
  const [inputError, setInputError] = useState<string | undefined>();
  const action = useAction();
  const submit = async (event: Event) => {
    event.preventDefault();
    setInputError(undefined);
    const value = text.trim();
    let body: Record<string, unknown>;
    if (value.startsWith('{')) {
      try {
        body = { claims: JSON.parse(value) };
      } catch {
        setInputError('The claims are not valid JSON. Paste a JSON object, or the token itself.');
        return;
      }
    } else {
      body = { token: value };
    }
    if (clientId.trim()) body['clientId'] = clientId.trim();
    setResult(await action.run(() => post<TokenTestView>('/api/v1/federated-credentials/test', body)));
  };
  return (
    <section aria-labelledby="test-title">
      <h1 id="test-title">Test a token</h1>
      <p class="muted">
        Paste a workload's OIDC token (or its claims as JSON) to see which federated credential would accept it or, when none does, exactly which check fails.
        Nothing is issued.
      </p>
      <form onSubmit={submit}>
        <Field label="Token or claims">
          <textarea name="token" rows={5} required value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} spellcheck={false} />
        </Field>
        <Field label="Principal (client id)" hint="Optional: consider only this principal's credentials.">
          <input name="client-id" value={clientId} onInput={(e) => setClientId((e.target as HTMLInputElement).value)} />
        </Field>
        <ErrorBox message={inputError ?? action.error} />
        <button type="submit" disabled={action.busy}>
          Test
        </button>
      </form>
      {result ? (
        <section aria-labelledby="verdict-title" class="verdict">
          <h2 id="verdict-title">{result.decision.accepted ? 'Accepted' : 'Refused'}</h2>
          <p class={result.decision.accepted ? 'ok' : 'error'} role="status">
            {result.decision.message}
          </p>
          {result.decision.principal ? (
            <p>
              Signs in as <a href={links.admin('principals', result.decision.principal.name)}>{result.decision.principal.name}</a> through{' '}
              <code>{result.decision.credential}</code>.
            </p>
          ) : null}
          {result.skipped.length > 0 ? <p class="muted">Not checked (claims were given, not a token): {result.skipped.join(', ')}.</p> : null}
          {result.candidates.length > 0 ? (
            <>
              <h3>Credentials trusting {result.issuer}</h3>
              {result.candidates.map((c) => (
                <div key={`${c.principal.id}/${c.credential}`} class="candidate">
                  <h4>
                    {c.principal.name} / {c.credential}: {c.accepted ? 'accepts it' : 'does not accept it'}
                  </h4>
                  <ul class="checks">
                    {c.checks.map((check, i) => (
                      <li key={i} class={check.ok ? 'ok' : 'fail'}>
                        <span aria-hidden="true">{check.ok ? '✓' : '✗'}</span> <strong>{check.check}</strong>
                        <span class="sr-only">{check.ok ? ' passes' : ' fails'}</span>: {check.detail}
                      </li>
                    ))}
                  </ul>
                </div>
              ))}
            </>
          ) : null}
          <details>
            <summary>Claims</summary>
            <JsonText value={result.claims} />
          </details>
        </section>
      ) : null}
    </section>
  );
}
