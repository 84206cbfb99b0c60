/** One image taken apart: index → platforms → manifest → config and layers, annotations, and the referrers tree by artifactType. */
import type { ImageView as Image, ReferrerNodeView } from '../../../src/api/repositories.js';
import { get } from '../api';
import { Copyable, ErrorBox, Loading } from '../components';
import { bytes, kindOf, shortDigest, when } from '../format';
import { useLoad } from '../hooks';
import { Provenance } from '../provenance';
import { links } from '../router';

export function ImageView({ name, digest }: { name: string; digest: string }) {
  const image = useLoad(() => get<Image>(`/api/v1/repositories/${name}/images/${digest}`), [name, digest]);
  return (
    <section aria-labelledby="image-title">
      <p class="crumbs">
        <a href={links.repositories()}>Repositories</a> / <a href={links.repository(name)}>{name}</a> /
      </p>
      <h1 id="image-title">
        <code>{shortDigest(digest)}</code>
      </h1>
      <ErrorBox message={image.error} />
      {image.loading && !image.data ? <Loading what="the image" /> : null}
      {image.data ? <Details image={image.data} /> : null}
    </section>
  );
}

function Details({ image }: { image: Image }) {
  const { repository } = image;
  return (
    <>
      <dl class="facts">
        <dt>Digest</dt>
        <dd>
          <Copyable value={image.digest} label="digest" />
        </dd>
        <dt>Type</dt>
        <dd>
          {kindOf(image.mediaType)} ({image.kind}){image.artifactType && image.kind !== 'image' ? `, artifact type ${image.artifactType}` : ''}
        </dd>
        <dt>Manifest size</dt>
        <dd>{bytes(image.size)}</dd>
        <dt>Tags</dt>
        <dd>{image.tags.length > 0 ? image.tags.join(', ') : <span class="muted">none</span>}</dd>
        {image.subject ? (
          <>
            <dt>Refers to</dt>
            <dd>
              <a href={links.image(repository, image.subject)}>
                <code>{shortDigest(image.subject)}</code>
              </a>
            </dd>
          </>
        ) : null}
      </dl>
      <Annotations title="Annotations" values={image.annotations} />
      {image.manifests.length > 0 ? (
        <section aria-labelledby="platforms-title">
          <h2 id="platforms-title">Platforms</h2>
          <ul class="tree">
            {image.manifests.map((m) => (
              <li key={m.digest}>
                <a href={links.image(repository, m.digest)}>{m.platform ?? m.artifactType ?? shortDigest(m.digest)}</a>{' '}
                <code class="muted">{shortDigest(m.digest)}</code>{' '}
                <span class="muted">
                  {kindOf(m.mediaType)}, {bytes(m.size)}
                </span>
                {Object.keys(m.annotations).length > 0 ? <Annotations title="Annotations" values={m.annotations} /> : null}
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      {image.config ? (
        <section aria-labelledby="config-title">
          <h2 id="config-title">Config</h2>
          <p>
            <code>{shortDigest(image.config.digest)}</code>{' '}
            <span class="muted">
              {image.config.mediaType}, {bytes(image.config.size)}
            </span>
          </p>
          {image.config.image ? (
            <>
              <dl class="facts">
                <dt>Platform</dt>
                <dd>{[image.config.image.os, image.config.image.architecture, image.config.image.variant].filter(Boolean).join('/') || '—'}</dd>
                <dt>Created</dt>
                <dd>{when(image.config.image.created)}</dd>
                {image.config.image.entrypoint ? (
                  <>
                    <dt>Entrypoint</dt>
                    <dd>
                      <code>{JSON.stringify(image.config.image.entrypoint)}</code>
                    </dd>
                  </>
                ) : null}
                {image.config.image.cmd ? (
                  <>
                    <dt>Command</dt>
                    <dd>
                      <code>{JSON.stringify(image.config.image.cmd)}</code>
                    </dd>
                  </>
                ) : null}
                {image.config.image.user ? (
                  <>
                    <dt>User</dt>
                    <dd>{image.config.image.user}</dd>
                  </>
                ) : null}
                {image.config.image.exposedPorts.length > 0 ? (
                  <>
                    <dt>Ports</dt>
                    <dd>{image.config.image.exposedPorts.join(', ')}</dd>
                  </>
                ) : null}
              </dl>
              <Annotations title="Labels" values={image.config.image.labels} />
              {image.config.image.env.length > 0 ? (
                <details>
                  <summary>Environment ({image.config.image.env.length})</summary>
                  <ul class="mono">
                    {image.config.image.env.map((e, i) => (
                      <li key={i}>{e}</li>
                    ))}
                  </ul>
                </details>
              ) : null}
              {image.config.image.history.length > 0 ? (
                <details>
                  <summary>History ({image.config.image.history.length} steps)</summary>
                  <ol class="mono">
                    {image.config.image.history.map((h, i) => (
                      <li key={i}>
                        {h.createdBy ?? h.comment ?? '—'} {h.emptyLayer ? <span class="muted">(no layer)</span> : null}
                      </li>
                    ))}
                  </ol>
                </details>
              ) : null}
            </>
          ) : null}
        </section>
      ) : null}
      {image.layers.length > 0 ? (
        <section aria-labelledby="layers-title">
          <h2 id="layers-title">Layers</h2>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">Digest</th>
                  <th scope="col">Media type</th>
                  <th scope="col">Size</th>
                </tr>
              </thead>
              <tbody>
                {image.layers.map((l, i) => (
                  <tr key={`${l.digest}-${i}`}>
                    <td>{i + 1}</td>
                    <td>
                      <code title={l.digest}>{shortDigest(l.digest)}</code>
                    </td>
                    <td>{l.mediaType}</td>
                    <td>{bytes(l.size)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      ) : null}
      <section aria-labelledby="referrers-title">
        <h2 id="referrers-title">Referrers</h2>
        {image.referrers.length === 0 ? (
          <p class="muted">No signatures, SBOMs or attestations refer to this manifest.</p>
        ) : (
          <ReferrerGroups repository={repository} nodes={image.referrers} />
        )}
      </section>
      <section aria-labelledby="pushes-title">
        <h2 id="pushes-title">Pushes</h2>
        {image.pushes.length === 0 ? (
          <p class="muted">No push of this manifest is recorded.</p>
        ) : (
          <ul class="pushes">
            {image.pushes.map((p, i) => (
              <li key={i}>
                {when(p.at)}{' '}
                {p.tag ? (
                  <>
                    as <code>{p.tag}</code>
                  </>
                ) : (
                  'by digest'
                )}{' '}
                {p.principal ? `by ${p.principal.name}` : ''} <Provenance claims={p.provenance as Record<string, unknown> | null} />
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}

/** Referrers grouped by artifactType (signatures, SBOMs, attestations), each with its own referrers. */
function ReferrerGroups({ repository, nodes }: { repository: string; nodes: ReferrerNodeView[] }) {
  const groups = new Map<string, ReferrerNodeView[]>();
  for (const node of nodes) {
    const key = node.artifactType ?? node.mediaType;
    groups.set(key, [...(groups.get(key) ?? []), node]);
  }
  return (
    <ul class="tree">
      {[...groups.entries()].map(([type, members]) => (
        <li key={type}>
          <strong>{type}</strong> <span class="muted">({members.length})</span>
          <ul>
            {members.map((node) => (
              <li key={node.digest}>
                <a href={links.image(repository, node.digest)}>
                  <code>{shortDigest(node.digest)}</code>
                </a>{' '}
                <span class="muted">{bytes(node.size)}</span>
                {Object.keys(node.annotations).length > 0 ? <Annotations title="Annotations" values={node.annotations} /> : null}
                {node.referrers.length > 0 ? <ReferrerGroups repository={repository} nodes={node.referrers} /> : null}
              </li>
            ))}
          </ul>
        </li>
      ))}
    </ul>
  );
}

function Annotations({ title, values }: { title: string; values: Record<string, string> }) {
  const entries = Object.entries(values);
  if (entries.length === 0) return null;
  return (
    <details class="annotations" open={entries.length <= 6}>
      <summary>
        {title} ({entries.length})
      </summary>
      <dl>
        {entries.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
    </details>
  );
}
