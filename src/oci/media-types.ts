/** Media types Berth understands as manifests. Anything else PUT as a manifest is MANIFEST_INVALID. */
export const mediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  /** The Sigstore bundle, v0.3: the artifactType and layer type of a bundle stored as a referrer (cosign's BUNDLE_SPEC). */
  sigstoreBundle: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  ociImageConfig: 'application/vnd.oci.image.config.v1+json',
  dockerImageConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

export type ManifestMediaType =
  typeof mediaTypes.ociManifest | typeof mediaTypes.ociIndex | typeof mediaTypes.dockerManifest | typeof mediaTypes.dockerManifestList;

const manifestMediaTypes: ReadonlySet<string> = new Set([
  mediaTypes.ociManifest,
  mediaTypes.ociIndex,
  mediaTypes.dockerManifest,
  mediaTypes.dockerManifestList,
]);

export function isManifestMediaType(value: string): value is ManifestMediaType {
  return manifestMediaTypes.has(value);
}

export function isIndexMediaType(value: string): boolean {
  return value === mediaTypes.ociIndex || value === mediaTypes.dockerManifestList;
}

/** Strips parameters (`; charset=utf-8`) and whitespace from a Content-Type value. */
export function baseMediaType(contentType: string | undefined): string {
  if (!contentType) return '';
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}
