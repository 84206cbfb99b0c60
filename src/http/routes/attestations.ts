/** Push attestations (`/api/v1/attestations/*`, an image's attestations): docs/attestations.md. */
import * as attestations from '../handlers/attestations.js';
import { api, name, type Route } from '../route.js';

export const attestationRoutes: readonly Route[] = [
  // Public: verifying needs the keys, and public keys are not secrets.
  { name: 'attestation-keys', method: 'GET', path: api('attestations/keys'), guard: 'public', handle: attestations.keys },
  { name: 'attestation-key', method: 'GET', path: api('attestations/keys/(?<hint>[0-9a-f]{64}|current)\\.pem'), guard: 'public', handle: attestations.keyPem },
  // Public: the controller and the credential provider ask before minting pull credentials.
  { name: 'attestation-requirement', method: 'GET', path: api('attestations/required'), guard: 'public', handle: attestations.requirement },
  { name: 'attestation-keys-rotate', method: 'POST', path: api('attestations/keys/rotate'), guard: 'owner', handle: attestations.rotate },
  // The default `registry` guard: needs pull on `name`, like a manifest GET.
  { name: 'image-attestations', method: 'GET', path: api(`repositories/${name}/attestations`), handle: attestations.image },
];
