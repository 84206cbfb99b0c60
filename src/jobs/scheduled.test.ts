import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { openSqliteMetadata } from '../metadata/sql/open.js';
import type { Metadata } from '../metadata/store.js';
import { ScheduledTasks } from './scheduled.js';

const logger = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/** Two runners over one database stand for two replicas. */
describe('scheduled tasks', () => {
  let metadata: Metadata;
  const clock = { offset: 0, now: () => Date.now() + clock.offset };

  before(async () => {
    metadata = await openSqliteMetadata(':memory:');
  });
  after(() => metadata.close());

  it('runs each due task on one replica only, then again once it is due', async () => {
    const runs: string[] = [];
    const replica = (id: string) =>
      new ScheduledTasks(
        metadata.tasks,
        [
          {
            name: 'prune',
            everyMs: 3_600_000,
            run: async () => {
              runs.push(id);
              await sleep(30);
              return { pruned: 1 };
            },
          },
        ],
        { clock, logger, pollMs: 20 },
      );
    const replicas = [replica('a'), replica('b')];
    for (const r of replicas) r.start();
    await sleep(300);
    assert.equal(runs.length, 1, `runs: ${runs.join(',')}`);
    clock.offset += 3_600_000;
    await sleep(300);
    assert.equal(runs.length, 2, `runs: ${runs.join(',')}`);
    await Promise.all(replicas.map((r) => r.stop()));
  });

  it('a failed run is recorded and tried again when next due', async () => {
    let attempts = 0;
    const tasks = new ScheduledTasks(
      metadata.tasks,
      [
        {
          name: 'flaky',
          everyMs: 60_000,
          run: async () => {
            attempts++;
            if (attempts === 1) throw new Error('database busy');
          },
        },
      ],
      { clock, logger, pollMs: 20 },
    );
    tasks.start();
    await sleep(200);
    assert.equal(attempts, 1);
    clock.offset += 60_000;
    await sleep(200);
    assert.equal(attempts, 2);
    await tasks.stop();
  });
});
