/**
 * A repository: its tags (digest, media type, size per platform and in total, the last push and
 * where it came from), pull commands pinned by digest, deleting a tag or manifest when allowed,
 * and (owners) who can push here.
 */
import { useState } from 'preact/hooks';
import type { RepositoryAccessView, TagListView, TagView } from '../../../src/api/repositories.js';
import { del, get } from '../api';
import { ConfirmButton, Copyable, ErrorBox, Loading, Notice } from '../components';
import { bytes, kindOf, shortDigest, when } from '../format';
import { useAction, useLoad } from '../hooks';
import { Provenance } from '../provenance';
import { links } from '../router';

const pageSize = 50;

export function RepositoryView({ name, owner }: { name: string; owner: boolean }) {
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined]);
  const last = cursors[cursors.length - 1];
  const tags = useLoad(() => {
    const params = new URLSearchParams({ n: String(pageSize) });
    if (last) params.set('last', last);
    return get<TagListView>(`/api/v1/repositories/${name}/tags?${params}`);
  }, [name, last]);
  const [selected, setSelected] = useState<string | undefined>();
  const action = useAction();
  const [done, setDone] = useState<string | undefined>();

  const remove = async (reference: string, what: string) => {
    setDone(undefined);
    const ok = await action.run(async () => {
      await del(`/v2/${name}/manifests/${reference}`);
      return true;
    });
    if (ok) {
      setDone(`${what} deleted.`);
      tags.reload();
    }
  };

  const chosen = tags.data?.tags.find((t) => t.tag === selected) ?? tags.data?.tags[0];
  return (
    <section aria-labelledby="repo-title">
      <p class="crumbs">
        <a href={links.repositories()}>Repositories</a> /
      </p>
      <h1 id="repo-title">{name}</h1>
      <ErrorBox message={tags.error} />
      <ErrorBox message={action.error} />
      {done ? <Notice>{done}</Notice> : null}
      {tags.loading && !tags.data ? <Loading what="tags" /> : null}
      {tags.data && tags.data.tags.length === 0 ? <p class="muted">This repository has no tags on this page.</p> : null}
      {tags.data && tags.data.tags.length > 0 ? (
        <>
          <div class="table-wrap">
            <table class="tags">
              <caption>Tags</caption>
              <thead>
                <tr>
                  <th scope="col">Tag</th>
                  <th scope="col">Digest</th>
                  <th scope="col">Type</th>
                  <th scope="col">Size</th>
                  <th scope="col">Platforms</th>
                  <th scope="col">Pushed</th>
                  <th scope="col">From</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {tags.data.tags.map((t) => (
                  <TagRow
                    key={t.tag}
                    name={name}
                    tag={t}
                    allowed={tags.data!.allowed}
                    onSelect={() => setSelected(t.tag)}
                    selected={chosen?.tag === t.tag}
                    onDelete={remove}
                  />
                ))}
              </tbody>
            </table>
          </div>
          <nav class="pager" aria-label="Tag pages">
            <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
              Previous
            </button>
            <button type="button" disabled={!tags.data.next} onClick={() => tags.data?.next && setCursors((c) => [...c, tags.data?.next ?? undefined])}>
              Next
            </button>
          </nav>
        </>
      ) : null}
      {chosen ? <PullCommands name={name} tag={chosen} /> : null}
      {owner ? <WhoCanPush name={name} /> : null}
    </section>
  );
}

function TagRow({
  name,
  tag,
  allowed,
  selected,
  onSelect,
  onDelete,
}: {
  name: string;
  tag: TagView;
  allowed: TagListView['allowed'];
  selected: boolean;
  onSelect: () => void;
  onDelete: (reference: string, what: string) => void;
}) {
  return (
    <tr class={selected ? 'selected' : undefined}>
      <th scope="row">
        <button type="button" class="link" aria-pressed={selected} onClick={onSelect} title="Show pull commands for this tag">
          {tag.tag}
        </button>
      </th>
      <td>
        <a href={links.image(name, tag.digest)} title={tag.digest}>
          <code>{shortDigest(tag.digest)}</code>
        </a>
      </td>
      <td>{tag.artifactType && !tag.artifactType.includes('image.config') ? tag.artifactType : kindOf(tag.mediaType)}</td>
      <td>{bytes(tag.size)}</td>
      <td>
        <ul class="platforms">
          {tag.platforms.map((p) => (
            <li key={p.digest}>
              <a href={links.image(name, p.digest)}>{p.platform ?? shortDigest(p.digest)}</a> <span class="muted">{bytes(p.size)}</span>
            </li>
          ))}
        </ul>
      </td>
      <td>
        {when(tag.pushedAt)}
        {tag.pushedBy ? <div class="muted">by {tag.pushedBy.name}</div> : null}
      </td>
      <td>
        <Provenance claims={tag.provenance as Record<string, unknown> | null} />
      </td>
      <td class="actions">
        {allowed.deleteTag ? <ConfirmButton label="Delete tag" confirm={`Delete ${tag.tag}`} onConfirm={() => onDelete(tag.tag, `Tag ${tag.tag}`)} /> : null}
        {allowed.deleteManifest ? (
          <ConfirmButton
            label="Delete manifest"
            confirm="Delete it and all its tags"
            onConfirm={() => onDelete(tag.digest, `Manifest ${shortDigest(tag.digest)}`)}
          />
        ) : null}
      </td>
    </tr>
  );
}

function PullCommands({ name, tag }: { name: string; tag: TagView }) {
  const host = location.host;
  const ref = `${host}/${name}@${tag.digest}`;
  const commands: Array<[string, string]> = [
    ['docker', `docker pull ${ref}`],
    ['podman', `podman pull ${ref}`],
    ['skopeo', `skopeo copy docker://${ref} oci-archive:${name.split('/').pop() ?? 'image'}.tar`],
    ['crane', `crane pull ${ref} ${name.split('/').pop() ?? 'image'}.tar`],
    ['helm', `helm pull oci://${host}/${name} --version ${tag.tag}`],
    ['oras', `oras pull ${ref}`],
    ['Kubernetes', `image: ${ref}`],
  ];
  return (
    <section aria-labelledby="pull-title" class="pull">
      <h2 id="pull-title">
        Pull <code>{tag.tag}</code>, pinned by digest
      </h2>
      <dl>
        {commands.map(([tool, command]) => (
          <div key={tool} class="command">
            <dt>{tool}</dt>
            <dd>
              <Copyable value={command} label={`${tool} command`} />
            </dd>
          </div>
        ))}
      </dl>
      <p class="muted">Helm charts are pulled by their version; Helm checks the chart's digest itself.</p>
    </section>
  );
}

function WhoCanPush({ name }: { name: string }) {
  const access = useLoad(() => get<RepositoryAccessView>(`/api/v1/repositories/${name}/access`), [name]);
  return (
    <section aria-labelledby="who-title">
      <h2 id="who-title">Who can push here</h2>
      <ErrorBox message={access.error} />
      {access.data ? (
        <>
          <p>{access.data.anonymousPull ? 'Anyone may pull this repository without signing in (anonymous pull).' : 'Pulling needs a login.'}</p>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Principal</th>
                  <th scope="col">Grants reaching it</th>
                  <th scope="col">Allows</th>
                  <th scope="col">Federated credentials</th>
                </tr>
              </thead>
              <tbody>
                {access.data.principals.map((p) => (
                  <tr key={p.id}>
                    <th scope="row">
                      <a href={links.admin('principals', p.name)}>{p.name}</a> <span class="muted">{p.kind}</span>
                      {p.disabled ? <span class="badge">disabled</span> : null}
                    </th>
                    <td>{p.grants.map((g) => `${g.permission} on ${g.pattern}`).join(', ')}</td>
                    <td>
                      {p.mayPush ? <strong>push</strong> : null} {p.actions.filter((a) => a !== 'push').join(', ')}
                    </td>
                    <td>
                      {p.federatedCredentials.length === 0 ? (
                        <span class="muted">—</span>
                      ) : (
                        <ul>
                          {p.federatedCredentials.map((c) => (
                            <li key={c.name}>
                              {c.name}: <code>{c.subject}</code> from <code>{c.issuer}</code>
                            </li>
                          ))}
                        </ul>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </section>
  );
}
