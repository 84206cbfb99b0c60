import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BERTH_SOURCE_CLI, startBerth, type BerthProcess } from '../support/berth-process.js';
import { ownerName, ownerPassword } from '../support/server.js';
import { Api } from '../admin/helpers.js';
import { loopbackEgress, pushImage, Receiver, waitFor } from './helpers.js';

/**
 * A real `berth serve` process killed with SIGKILL while deliveries are queued or in flight, then
 * started again on the same data: every event still arrives (at least once, with its stable id).
 */
describe('webhooks across a crash and restart of berth serve', () => {
  let home = '';
  let dataDir = '';
  let configFile = '';
  let receiver: Receiver;
  let berth: BerthProcess | undefined;

  const start = () =>
    startBerth({
      dataDir,
      auth: true,
      env: { BERTH_BOOTSTRAP_USER: ownerName, BERTH_BOOTSTRAP_PASSWORD: ownerPassword },
      args: ['--config', configFile],
      cliPath: BERTH_SOURCE_CLI,
      nodeArgs: ['--import', 'tsx'],
    });

  async function deliveries(api: Api): Promise<Array<{ eventId: string; status: string; repository: string }>> {
    return (await api.get('/webhooks/crash/deliveries?limit=500')).body.deliveries;
  }

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'berth-webhook-restart-'));
    dataDir = join(home, 'data');
    configFile = join(home, 'berth.json');
    // timeoutMs 1000 makes a crashed process's leases run out after 3 s (2 x timeout + 1 s).
    await writeFile(
      configFile,
      JSON.stringify({ egress: loopbackEgress, webhooks: { pollIntervalMs: 200, timeoutMs: 1000, maxAttempts: 100, backoff: { baseMs: 50, maxMs: 300 } } }),
    );
    receiver = await Receiver.start();
  });
  after(async () => {
    await berth?.stop();
    await receiver.close();
    await rm(home, { recursive: true, force: true });
  });

  it('loses nothing queued while the receiver was down', async () => {
    berth = await start();
    const owner = await Api.asOwner(berth.url);
    const created = await owner.post('/webhooks', { name: 'crash', url: `${receiver.url}/hook` });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await receiver.close();
    const pushed = [];
    for (let i = 0; i < 5; i++) pushed.push(await pushImage(berth.url, `crash/queued${i}`, 'v1'));
    // Crash right away: some events may not even be fanned out yet, others are mid-retry.
    await berth.kill();
    berth = undefined;

    await receiver.listen();
    berth = await start();
    const api = await Api.asOwner(berth.url);
    await waitFor('every queued event delivered', async () => {
      const list = await deliveries(api);
      return list.length === 5 && list.every((d) => d.status === 'delivered');
    });
    const digests = new Set(receiver.received.map((r) => r.json.target.digest as string));
    for (const p of pushed) assert.ok(digests.has(p.digest), `missing ${p.digest}`);
  });

  it('delivers again what was in flight when the process died, with the same event ids', async () => {
    assert.ok(berth);
    const before = receiver.received.length;
    receiver.mode = { kind: 'hang' };
    const pushed = [await pushImage(berth.url, 'crash/inflight0', 'v1'), await pushImage(berth.url, 'crash/inflight1', 'v1')];
    const held = await waitFor('both deliveries held by the receiver', () => {
      const got = receiver.received.slice(before).filter((r) => String(r.json?.target?.repository).startsWith('crash/inflight'));
      return got.length === 2 ? got : undefined;
    });
    await berth.kill();
    berth = undefined;
    // (A retry may have reached the receiver before the kill if the machine was slow: same ids.)
    const afterKill = receiver.received.length;
    receiver.mode = { kind: 'ok' };
    receiver.releaseHanging();

    berth = await start();
    const api = await Api.asOwner(berth.url);
    await waitFor('the in-flight deliveries redelivered after their leases ran out', async () => {
      const list = (await deliveries(api)).filter((d) => d.repository.startsWith('crash/inflight'));
      return list.length === 2 && list.every((d) => d.status === 'delivered');
    });
    const heldIds = held.map((r) => String(r.headers['berth-event-id'])).sort();
    const again = [...new Set(receiver.received.slice(afterKill).map((r) => String(r.headers['berth-event-id'])))].sort();
    assert.deepEqual(again, heldIds, 'redelivered by the restarted process with the ids first sent');
    assert.deepEqual(held.map((r) => r.json.target.digest).sort(), pushed.map((p) => p.digest).sort());
  });
});
