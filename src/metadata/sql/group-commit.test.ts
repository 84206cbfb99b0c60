import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit } from './group-commit.js';

describe('group commit', () => {
  it('writes rows added in one turn with one call, in order, and answers each caller when its batch is written', async () => {
    const writes: number[][] = [];
    let release: () => void = () => undefined;
    const commit = new GroupCommit<number>(async (rows) => {
      writes.push(rows);
      if (writes.length === 1) await new Promise<void>((done) => (release = done));
    }, 3);
    const settled: number[] = [];
    const first = [1, 2].map((n) => commit.add(n).then(() => settled.push(n)));
    await new Promise((done) => setImmediate(done));
    // While the first batch is being written, more rows wait; they go in batches of at most 3.
    const later = [3, 4, 5, 6].map((n) => commit.add(n).then(() => settled.push(n)));
    assert.deepEqual(settled, [], 'no caller is answered before its row is written');
    release();
    await Promise.all([...first, ...later]);
    assert.deepEqual(writes, [[1, 2], [3, 4, 5], [6]]);
    assert.deepEqual(settled, [1, 2, 3, 4, 5, 6]);
  });

  it('writes a failed batch row by row, so only the bad row fails its caller', async () => {
    const written: number[] = [];
    const commit = new GroupCommit<number>(async (rows) => {
      if (rows.includes(13)) throw new Error('bad row');
      written.push(...rows);
    }, 10);
    const results = await Promise.allSettled([12, 13, 14].map((n) => commit.add(n)));
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(written, [12, 14]);
    // The next row is written on its own turn as usual.
    await commit.add(15);
    assert.deepEqual(written, [12, 14, 15]);
  });
});
