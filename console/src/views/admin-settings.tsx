/** Registry-wide settings: anonymous pull. */
import { useState } from 'preact/hooks';
import type { AnonymousPullView } from '../../../src/api/audit.js';
import { get, put } from '../api';
import { ErrorBox, Field, Notice } from '../components';
import { useAction, useLoad } from '../hooks';

export function Settings() {
  const current = useLoad(() => get<AnonymousPullView>('/api/v1/settings/anonymous-pull'), []);
  const [text, setText] = useState<string | undefined>();
  const [notice, setNotice] = useState<string | undefined>();
  const action = useAction();
  const value = text ?? (current.data?.patterns ?? []).join('\n');
  const save = async (e: Event) => {
    e.preventDefault();
    setNotice(undefined);
    const patterns = value
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    const saved = await action.run(() => put<AnonymousPullView>('/api/v1/settings/anonymous-pull', { patterns }));
    if (saved) {
      setText(undefined);
      current.reload();
      setNotice(
        saved.patterns.length === 0 ? 'Anonymous pull is off.' : `Anyone may now pull ${saved.patterns.join(', ')} (replicas follow within a few seconds).`,
      );
    }
  };
  return (
    <section aria-labelledby="settings-title">
      <h1 id="settings-title">Settings</h1>
      <h2>Anonymous pull</h2>
      <ErrorBox message={current.error} />
      {notice ? <Notice>{notice}</Notice> : null}
      <form onSubmit={save}>
        <Field
          label="Repositories anyone may pull without signing in"
          hint="One repository pattern per line (team/*, public/**). Empty: anonymous pull is off."
        >
          <textarea name="anonymous-pull" rows={4} value={value} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
        </Field>
        <ErrorBox message={action.error} />
        <button type="submit" disabled={action.busy}>
          Save
        </button>
      </form>
    </section>
  );
}
