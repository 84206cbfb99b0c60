/** Sign in: a name and password (through the token service), or a single-sign-on provider. */
import { useState } from 'preact/hooks';
import type { SessionView } from '../../../src/api/console.js';
import { session } from '../api';
import { ErrorBox, Field } from '../components';
import { useAction } from '../hooks';

export function SignIn({
  providers,
  ssoError,
  returnTo,
  onSignedIn,
}: {
  providers: SessionView['providers'];
  ssoError: string | undefined;
  returnTo: string | undefined;
  onSignedIn: (s: SessionView) => void;
}) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const action = useAction();
  const submit = async (event: Event) => {
    event.preventDefault();
    const result = await action.run(() => session.signIn(username, password));
    if (result) onSignedIn(result);
  };
  const back = returnTo && returnTo.startsWith('#/') && !returnTo.startsWith('#/sign-in') ? returnTo : '#/';
  return (
    <main id="main" class="sign-in">
      <h1>Sign in to Berth</h1>
      <ErrorBox message={ssoError} />
      {providers.length > 0 ? (
        <section aria-labelledby="sso">
          <h2 id="sso">Single sign-on</h2>
          <ul class="providers">
            {providers.map((p) => (
              <li key={p.name}>
                <a class="button" href={`/console/sso/${encodeURIComponent(p.name)}/start?return=${encodeURIComponent(back)}`}>
                  Sign in with {p.displayName}
                </a>
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      <section aria-labelledby="password-sign-in">
        <h2 id="password-sign-in">{providers.length > 0 ? 'Or with a Berth password' : 'With a Berth password'}</h2>
        <form onSubmit={submit}>
          <Field label="Name">
            <input name="username" autocomplete="username" required value={username} onInput={(e) => setUsername((e.target as HTMLInputElement).value)} />
          </Field>
          <Field label="Password">
            <input
              name="password"
              type="password"
              autocomplete="current-password"
              required
              value={password}
              onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
            />
          </Field>
          <ErrorBox message={action.error} />
          <button type="submit" disabled={action.busy}>
            {action.busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
      </section>
    </main>
  );
}
