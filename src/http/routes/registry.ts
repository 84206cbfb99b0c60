/** The OCI Distribution API (`/v2`). */
import * as blobs from '../handlers/blobs.js';
import * as listings from '../handlers/listings.js';
import * as manifests from '../handlers/manifests.js';
import * as uploads from '../handlers/uploads.js';
import { sendJson } from '../respond.js';
import { name, v2, type Route } from '../route.js';

export const registryRoutes: readonly Route[] = [
  { name: 'base', method: 'GET', path: /^\/v2\/?$/, handle: async ({ res }) => sendJson(res, 200, {}) },
  { name: 'catalog', method: 'GET', path: v2('_catalog'), handle: listings.catalog },
  { name: 'tags', method: 'GET', path: v2(`${name}/tags/list`), handle: listings.tags },
  { name: 'referrers', method: 'GET', path: v2(`${name}/referrers/(?<digest>[^/]+)`), handle: listings.referrers },
  { name: 'manifest', method: 'GET', path: v2(`${name}/manifests/(?<reference>[^/]+)`), handle: manifests.get },
  { name: 'manifest', method: 'HEAD', path: v2(`${name}/manifests/(?<reference>[^/]+)`), handle: manifests.get },
  { name: 'manifest', method: 'PUT', path: v2(`${name}/manifests/(?<reference>[^/]+)`), handle: manifests.put },
  { name: 'manifest', method: 'DELETE', path: v2(`${name}/manifests/(?<reference>[^/]+)`), handle: manifests.remove },
  { name: 'uploads', method: 'POST', path: v2(`${name}/blobs/uploads/?`), handle: uploads.start },
  { name: 'upload', method: 'GET', path: v2(`${name}/blobs/uploads/(?<uuid>[^/]+)`), handle: uploads.status },
  { name: 'upload', method: 'PATCH', path: v2(`${name}/blobs/uploads/(?<uuid>[^/]+)`), handle: uploads.append },
  { name: 'upload', method: 'PUT', path: v2(`${name}/blobs/uploads/(?<uuid>[^/]+)`), handle: uploads.complete },
  { name: 'upload', method: 'DELETE', path: v2(`${name}/blobs/uploads/(?<uuid>[^/]+)`), handle: uploads.cancel },
  { name: 'blob', method: 'GET', path: v2(`${name}/blobs/(?<digest>[^/]+)`), handle: blobs.get },
  { name: 'blob', method: 'HEAD', path: v2(`${name}/blobs/(?<digest>[^/]+)`), handle: blobs.get },
  { name: 'blob', method: 'DELETE', path: v2(`${name}/blobs/(?<digest>[^/]+)`), handle: blobs.remove },
];
