import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { createMetrics } from '../metrics/index.js';
import { systemClock } from '../shared/clock.js';
import { LeaseRunner, type JobKind, type Lease, type Outcome } from './runner.js';

/** Items in memory: `fail` ones throw, `stale` ones were held by a crashed owner (a takeover), `lose` ones lose their lease. */
class Kind implements JobKind<string> {
  readonly name = 'metrics test';
  readonly pending: string[] = [];
  readonly released: string[] = [];
  readonly stale = new Set<string>();

  key(item: string): string {
    return item;
  }
  async claim(limit: number, lease: Lease): Promise<string[]> {
    const taken = this.pending.splice(0, limit);
    for (const item of taken) if (this.stale.has(item)) lease.onTakeover?.();
    return taken;
  }
  async renew(item: string): Promise<boolean> {
    return !item.startsWith('lose');
  }
  async run(item: string, signal: AbortSignal): Promise<void> {
    if (item.startsWith('fail')) throw new Error('failed on purpose');
    if (item.startsWith('lose')) await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
  }
  async release(item: string, _outcome: Outcome<void>): Promise<void> {
    this.released.push(item);
  }
}

describe('lease runner metrics', () => {
  it('counts runs by outcome, takeovers and lost leases, labelled by the kind', async () => {
    const metrics = createMetrics();
    const kind = new Kind();
    kind.pending.push('ok-1', 'ok-2', 'fail-1', 'lose-1');
    kind.stale.add('ok-2');
    const runner = new LeaseRunner(kind, {
      concurrency: 4,
      leaseMs: 30,
      pollMs: 10,
      onStop: 'abort',
      clock: systemClock,
      logger: pino({ level: 'silent' }),
      metrics,
    });
    runner.start();
    const deadline = Date.now() + 5000;
    while (kind.released.length < 4) {
      if (Date.now() > deadline) assert.fail(`released only ${kind.released.join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await runner.stop();
    const text = await metrics.registry.metrics();
    const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? 'NaN');
    assert.equal(value('berth_jobs_runs_total{kind="metrics test",outcome="done"}'), 2);
    assert.equal(value('berth_jobs_runs_total{kind="metrics test",outcome="failed"}'), 1);
    assert.equal(value('berth_jobs_runs_total{kind="metrics test",outcome="aborted"}'), 1);
    assert.equal(value('berth_jobs_leases_lost_total{kind="metrics test"}'), 1);
    assert.equal(value('berth_jobs_lease_takeovers_total{kind="metrics test"}'), 1);
    assert.equal(value('berth_jobs_run_duration_seconds_count{kind="metrics test"}'), 4);
    assert.equal(value('berth_jobs_running{kind="metrics test"}'), 0);
  });
});
