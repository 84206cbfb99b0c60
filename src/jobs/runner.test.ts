import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { systemClock } from '../shared/clock.js';
import { LeaseLost, LeaseRunner, Stopping, type JobKind, type Lease, type Outcome, type RunnerOptions } from './runner.js';

/** Resolves when `check` holds, polling; a bound on a broken runner, not a timing assertion. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((ok) => (resolve = ok));
  return { promise, resolve };
}

interface Row {
  id: string;
  owner: string | undefined;
  until: number;
  done: boolean;
}

/**
 * A job table in memory with the same lease rule as the SQL one. `work` decides what a run does
 * (by default it ends at once with the item's id).
 */
class FakeKind implements JobKind<Row, string> {
  readonly name = 'test job';
  readonly rows = new Map<string, Row>();
  readonly released: Array<{ id: string; outcome: Outcome<string>; owner: string }> = [];
  readonly signals = new Map<string, AbortSignal>();
  readonly renewals: string[] = [];
  running = 0;
  maxRunning = 0;
  claims = 0;
  renewAnswer = true;
  work: (row: Row, signal: AbortSignal) => Promise<string> = async (row) => row.id;
  claimGate: Promise<void> | undefined;
  failClaims = 0;

  add(...ids: string[]): void {
    for (const id of ids) this.rows.set(id, { id, owner: undefined, until: 0, done: false });
  }

  key(row: Row): string {
    return row.id;
  }

  async claim(limit: number, lease: Lease): Promise<Row[]> {
    this.claims++;
    if (this.failClaims > 0) {
      this.failClaims--;
      throw new Error('the database is busy');
    }
    await this.claimGate;
    const won: Row[] = [];
    for (const row of this.rows.values()) {
      if (won.length >= limit) break;
      if (row.done || row.until > lease.now) continue;
      row.owner = lease.owner;
      row.until = lease.until;
      won.push(row);
    }
    return won;
  }

  async renew(row: Row, lease: Lease): Promise<boolean> {
    this.renewals.push(row.id);
    if (!this.renewAnswer || row.owner !== lease.owner) return false;
    row.until = lease.until;
    return true;
  }

  async run(row: Row, signal: AbortSignal): Promise<string> {
    this.signals.set(row.id, signal);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      return await this.work(row, signal);
    } finally {
      this.running--;
    }
  }

  async release(row: Row, outcome: Outcome<string>, owner: string): Promise<void> {
    this.released.push({ id: row.id, outcome, owner });
    if (row.owner !== owner) return;
    if (outcome.status === 'done') row.done = true;
    row.owner = undefined;
    row.until = 0;
  }
}

function runner(kind: FakeKind, options: Partial<RunnerOptions> = {}): LeaseRunner<Row, string> {
  return new LeaseRunner(kind, {
    concurrency: 2,
    leaseMs: 60_000,
    pollMs: 3_600_000,
    onStop: 'abort',
    clock: systemClock,
    logger: pino({ level: 'silent' }),
    ...options,
  });
}

/** A run that waits for its signal to abort, then rejects with the abort reason (as an interrupted copy does). */
const untilAborted = (_row: Row, signal: AbortSignal) =>
  new Promise<string>((_ok, fail) => signal.addEventListener('abort', () => fail(signal.reason as Error), { once: true }));

describe('LeaseRunner', () => {
  it('runs every due item once, at most `concurrency` at a time, and releases each with its value', async () => {
    const kind = new FakeKind();
    kind.add('a', 'b', 'c', 'd', 'e');
    kind.work = async (row) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return `ran ${row.id}`;
    };
    const jobs = runner(kind, { concurrency: 2 });
    jobs.start();
    await until(() => kind.released.length === 5, 'every item released');
    await jobs.stop();
    assert.equal(kind.maxRunning, 2);
    assert.deepEqual(kind.released.map((r) => r.id).sort(), ['a', 'b', 'c', 'd', 'e']);
    for (const { id, outcome, owner } of kind.released) {
      assert.deepEqual(outcome, { status: 'done', value: `ran ${id}` });
      assert.equal(owner, jobs.owner);
    }
  });

  it('claims again at once on wake() (a local write) and finds work of other replicas by polling', async () => {
    const kind = new FakeKind();
    const woken = runner(kind);
    woken.start();
    await until(() => kind.claims >= 1, 'the first cycle');
    kind.add('local');
    woken.wake();
    await until(() => kind.released.length === 1, 'the woken item released');
    await woken.stop();

    const other = new FakeKind();
    const polling = runner(other, { pollMs: 10 });
    polling.start();
    await until(() => other.claims >= 1, 'the first cycle');
    other.add('remote'); // no wake: as if another replica wrote it
    await until(() => other.released.length === 1, 'the polled item released');
    await polling.stop();
  });

  it('looks again when the kind says the next item falls due, sooner than the poll', async () => {
    const kind = new FakeKind();
    const dueAt = Date.now() + 30;
    const jobs = runner(Object.assign(kind, { nextDueAt: async () => dueAt }));
    jobs.start();
    await until(() => kind.claims >= 1, 'the first cycle');
    kind.add('retry'); // no wake-up, and the poll is an hour away
    await until(() => kind.released.length === 1, 'the due item released');
    await jobs.stop();
  });

  it('renews the lease of a running item before it lapses', async () => {
    const kind = new FakeKind();
    kind.add('long');
    const hold = deferred();
    kind.work = async (row) => {
      await hold.promise;
      return row.id;
    };
    const jobs = runner(kind, { leaseMs: 60 });
    jobs.start();
    await until(() => kind.renewals.length >= 3, 'three renewals');
    const row = kind.rows.get('long')!;
    assert.equal(row.owner, jobs.owner);
    assert.ok(row.until > Date.now(), 'still leased');
    hold.resolve();
    await until(() => kind.released.length === 1, 'released');
    await jobs.stop();
    assert.deepEqual(kind.released[0]?.outcome, { status: 'done', value: 'long' });
  });

  it('aborts a run whose lease is lost, and releases it as lost', async () => {
    const kind = new FakeKind();
    kind.add('taken');
    kind.work = untilAborted;
    const jobs = runner(kind, { leaseMs: 30 });
    jobs.start();
    await until(() => kind.signals.has('taken'), 'the run started');
    kind.renewAnswer = false;
    await until(() => kind.released.length === 1, 'released');
    assert.ok(kind.signals.get('taken')?.reason instanceof LeaseLost);
    assert.deepEqual(kind.released[0]?.outcome, { status: 'aborted', reason: 'lease-lost' });
    await jobs.stop();
  });

  it('reports a run that throws as failed, and keeps going after a claim that throws', async () => {
    const kind = new FakeKind();
    kind.failClaims = 1;
    kind.add('broken');
    const boom = new Error('boom');
    kind.work = async () => {
      throw boom;
    };
    const jobs = runner(kind, { pollMs: 10 });
    jobs.start();
    await until(() => kind.released.length >= 1, 'released after the failed claim');
    await jobs.stop();
    assert.ok(kind.claims >= 2);
    assert.deepEqual(kind.released[0]?.outcome, { status: 'failed', error: boom });
  });

  it('stop() in abort mode aborts what runs and resolves once it is released', async () => {
    const kind = new FakeKind();
    kind.add('a', 'b');
    kind.work = untilAborted;
    const jobs = runner(kind);
    jobs.start();
    await until(() => kind.running === 2, 'both running');
    await jobs.stop();
    assert.equal(jobs.active, 0);
    assert.deepEqual(
      kind.released.map((r) => r.outcome),
      [
        { status: 'aborted', reason: 'stopping' },
        { status: 'aborted', reason: 'stopping' },
      ],
    );
    assert.ok(kind.signals.get('a')?.reason instanceof Stopping);
    assert.equal(kind.rows.get('a')?.owner, undefined, 'handed back');
  });

  it('stop() in finish mode lets what runs end, and resolves after its release', async () => {
    const kind = new FakeKind();
    kind.add('attempt');
    const hold = deferred();
    const events: string[] = [];
    kind.work = async (row, signal) => {
      await hold.promise;
      events.push(signal.aborted ? 'run aborted' : 'run ended');
      return row.id;
    };
    const jobs = runner(kind, { onStop: 'finish' });
    jobs.start();
    await until(() => kind.running === 1, 'running');
    const stopped = jobs.stop().then(() => events.push('stopped'));
    await new Promise((resolve) => setImmediate(resolve));
    hold.resolve();
    await stopped;
    assert.deepEqual(events, ['run ended', 'stopped']);
    assert.deepEqual(kind.released[0]?.outcome, { status: 'done', value: 'attempt' });
  });

  it('releases without running what a claim returns after stop() began (abort mode)', async () => {
    const kind = new FakeKind();
    kind.add('late');
    const gate = deferred();
    kind.claimGate = gate.promise;
    const jobs = runner(kind);
    jobs.start();
    await until(() => kind.claims === 1, 'claiming');
    const stopped = jobs.stop();
    gate.resolve();
    await stopped;
    assert.equal(kind.signals.size, 0, 'never run');
    assert.deepEqual(kind.released[0]?.outcome, { status: 'aborted', reason: 'stopping' });
  });

  it('runs maintenance in the first cycle, and prepare again at once while it says there is more', async () => {
    const kind = new FakeKind();
    let batches = 3;
    const withPrepare = Object.assign(kind, {
      prepare: async () => {
        if (batches === 0) return false;
        kind.add(`made-${batches}`);
        return --batches > 0;
      },
    });
    let maintained = 0;
    const jobs = runner(withPrepare, { concurrency: 5, maintenance: { everyMs: 3_600_000, run: async () => void maintained++ } });
    jobs.start();
    await until(() => kind.released.length === 3, 'every prepared item released');
    await jobs.stop();
    assert.equal(maintained, 1);
    assert.equal(batches, 0);
  });
});
