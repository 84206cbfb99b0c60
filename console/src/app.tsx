/**
 * The console's shell: who is signed in (from `/console/session`), the navigation, and the view
 * for the current route. Owners see the administration views; everyone sees what they may pull.
 */
import { useEffect, useState } from 'preact/hooks';
import type { SessionView } from '../../src/api/console.js';
import { onSessionEnded, session, setCsrfToken } from './api';
import { ErrorBox, Loading } from './components';
import { messageOf } from './hooks';
import { links, navigate, useRoute, type Route } from './router';
import { Admin } from './views/admin';
import { ImageView } from './views/image';
import { RepositoryView } from './views/repository';
import { Repositories } from './views/repositories';
import { SignIn } from './views/sign-in';

type SessionState = SessionView & { ssoError?: string };

export function App() {
  const route = useRoute();
  const [state, setState] = useState<SessionState | undefined>();
  const [error, setError] = useState<string | undefined>();

  const refresh = () =>
    session.get().then(
      (s) => {
        setCsrfToken(s.csrfToken);
        setState(s);
        setError(undefined);
      },
      (err: unknown) => setError(messageOf(err)),
    );

  useEffect(() => {
    void refresh();
    return onSessionEnded(() => {
      setCsrfToken(null);
      setState((s) => (s ? { ...s, signedIn: false, user: null, csrfToken: null } : s));
    });
  }, []);

  useEffect(() => {
    // Titles say where the person is (screen readers announce them; tabs show them).
    document.title = `${titleOf(route)} · Berth`;
  }, [route]);

  if (error) return <ErrorBox message={error} />;
  if (!state) return <Loading what="the console" />;
  if (!state.signedIn || !state.user) {
    return (
      <SignIn
        providers={state.providers}
        ssoError={state.ssoError}
        returnTo={route.view === 'sign-in' ? undefined : location.hash}
        onSignedIn={(s) => {
          setCsrfToken(s.csrfToken);
          setState(s);
          if (route.view === 'sign-in') navigate(links.repositories());
        }}
      />
    );
  }
  const user = state.user;

  const signOut = async () => {
    try {
      await session.signOut();
    } finally {
      setCsrfToken(null);
      await refresh();
      navigate(links.signIn());
    }
  };

  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={links.repositories()}>
          Berth
        </a>
        <nav aria-label="Main">
          <a
            href={links.repositories()}
            aria-current={route.view === 'repositories' || route.view === 'repository' || route.view === 'image' ? 'page' : undefined}
          >
            Repositories
          </a>
          {user.owner ? (
            <a href={links.admin('principals')} aria-current={route.view === 'admin' ? 'page' : undefined}>
              Administration
            </a>
          ) : null}
        </nav>
        <div class="who">
          <span title={`Signed in ${user.method === 'sso' ? `with ${user.provider ?? 'single sign-on'}` : 'with a password'} until ${user.expiresAt}`}>
            {user.name}
          </span>
          <button type="button" class="small" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route} owner={user.owner} />
      </main>
    </>
  );
}

function Page({ route, owner }: { route: Route; owner: boolean }) {
  switch (route.view) {
    case 'repositories':
    case 'sign-in':
      return <Repositories />;
    case 'repository':
      return <RepositoryView name={route.name} owner={owner} />;
    case 'image':
      return <ImageView name={route.name} digest={route.digest} />;
    case 'admin':
      return owner ? (
        <Admin section={route.section} item={route.item} />
      ) : (
        <ErrorBox message="Administration is for owners of the registry. Ask an owner if you need something changed." />
      );
    case 'not-found':
      return <ErrorBox message="There is no such page in the console. Go back to the repositories." />;
  }
}

function titleOf(route: Route): string {
  switch (route.view) {
    case 'repository':
      return route.name;
    case 'image':
      return `${route.name}@${route.digest.slice(0, 19)}`;
    case 'admin':
      return `Administration: ${route.section}`;
    case 'sign-in':
      return 'Sign in';
    default:
      return 'Repositories';
  }
}
