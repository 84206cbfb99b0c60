/** Servers, API callers and waits shared by the import tests. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfigInput } from '../../src/config/schema.js';
import type { ImportJobView } from '../../src/api/imports.js';
import { Api, type ApiResponse } from '../admin/helpers.js';
import { tokenFor } from '../auth/helpers.js';
import { ownerName, ownerPassword, startTestServer, type TestServer, type TestServerOptions } from '../support/server.js';

export { Api };
export type { ApiResponse, ImportJobView };

/** Tests run every registry on loopback, which the egress policy refuses unless allowed. */
export const loopbackAllowed = ['127.0.0.1/32', '::1/128'];

/** A Berth that imports: loopback sources allowed, quick polling and retries (no test waits on a timer). */
export function startImportServer(
  options: TestServerOptions & { importConfig?: NonNullable<ConfigInput['import']>; egress?: NonNullable<ConfigInput['egress']> } = {},
): Promise<TestServer> {
  const { importConfig, egress, ...rest } = options;
  return startTestServer({
    ...rest,
    config: {
      ...rest.config,
      egress: egress ?? { allowPrivateNetworks: false, allow: loopbackAllowed },
      import: { pollIntervalMs: 100, retryDelayMs: 50, ...importConfig },
    },
  });
}

/** An API caller holding an owner token (`registry:admin:*`). */
export function ownerApi(server: TestServer): Promise<Api> {
  return Api.as(server.url, ownerName, ownerPassword);
}

/** An API caller for `user` with a token asking for `scopes` (the token service grants what the user may). */
export async function apiAs(server: TestServer, user: string, password: string, scopes: string[]): Promise<Api> {
  return new Api(server.url, String((await tokenFor(server.url, user, password, scopes))['token']));
}

/** POST /api/v1/import and assert 202; returns the job. */
export async function submit(api: Api, body: unknown): Promise<ImportJobView> {
  const res = await api.post('/import', body);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body as ImportJobView;
}

/** Polls the job until it succeeded or failed (bounded: a broken runner fails the test, it does not hang it). */
export async function waitForJob(api: Api, id: string, limitMs = 90_000): Promise<ImportJobView> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const res = await api.get(`/imports/${id}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const job = res.body as ImportJobView;
    if (job.status === 'succeeded' || job.status === 'failed') return job;
    if (Date.now() > deadline) assert.fail(`import ${id} still ${job.status} after ${limitMs} ms: ${JSON.stringify(job)}`);
    await sleep(50);
  }
}

/** Imports and waits; asserts success and returns the job. */
export async function importOk(api: Api, body: unknown): Promise<ImportJobView> {
  const job = await waitForJob(api, (await submit(api, body)).id);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  return job;
}
