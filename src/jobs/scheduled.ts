/**
 * Periodic tasks (retention pruning) as a kind of the lease runner: each task is one row in the
 * metadata database (`ScheduledTaskStore`), due every `everyMs`; a replica claims a due task with
 * a lease, runs it, and records when it is due next, so with several replicas each run happens on
 * exactly one of them. A run that fails is logged and tried again at the next due time.
 */
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';
import type { Lease, ScheduledTaskStore } from '../shared/lease.js';
import { LeaseRunner, type JobKind, type Outcome } from './runner.js';

export interface ScheduledTask {
  /** Names the task's row; unique among tasks. */
  name: string;
  /** How long after a run (done or failed) the task is due again. */
  everyMs: number;
  /** Does the work; what it returns is logged (how many rows were pruned, say). */
  run(now: number, signal: AbortSignal): Promise<Record<string, number> | void>;
}

export interface ScheduledTaskOptions {
  clock: Clock;
  logger: Logger;
  /** How often to look for due tasks (default: a minute, or the shortest `everyMs` if shorter). */
  pollMs?: number;
  /** Lease length while a task runs (renewed every third of it). */
  leaseMs?: number;
}

export class ScheduledTasks {
  private readonly runner: LeaseRunner<string, Record<string, number> | void> | undefined;

  constructor(store: ScheduledTaskStore, tasks: readonly ScheduledTask[], options: ScheduledTaskOptions) {
    if (tasks.length === 0) return;
    const byName = new Map(tasks.map((task) => [task.name, task]));
    if (byName.size !== tasks.length) throw new Error('scheduled tasks must have distinct names');
    const { clock, logger } = options;
    const kind: JobKind<string, Record<string, number> | void> = {
      name: 'scheduled task',
      key: (name) => name,
      claim: (limit, lease) => store.claim([...byName.keys()], { ...lease, limit }),
      renew: (name, lease: Lease) => store.renew(name, lease),
      run: (name, signal) => (byName.get(name) as ScheduledTask).run(clock.now(), signal),
      release: async (name, outcome: Outcome<Record<string, number> | void>, owner) => {
        const task = byName.get(name) as ScheduledTask;
        const at = clock.now();
        let error: string | undefined;
        if (outcome.status === 'done') {
          if (outcome.value && Object.values(outcome.value).some((n) => n > 0)) logger.info({ task: name, ...outcome.value }, 'scheduled task done');
        } else if (outcome.status === 'failed') {
          error = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
          logger.warn({ task: name, err: outcome.error }, 'scheduled task failed; it runs again when next due');
        } else {
          error = `aborted (${outcome.reason})`;
        }
        await store.release(name, owner, { at, nextDueAt: outcome.status === 'aborted' ? at : at + task.everyMs, error: error?.slice(0, 1000) });
      },
    };
    const shortest = Math.min(...tasks.map((t) => t.everyMs));
    this.runner = new LeaseRunner(kind, {
      concurrency: 1,
      leaseMs: options.leaseMs ?? 5 * 60_000,
      pollMs: options.pollMs ?? Math.min(60_000, shortest),
      onStop: 'abort',
      clock,
      logger,
    });
  }

  start(): void {
    this.runner?.start();
  }

  stop(): Promise<void> {
    return this.runner?.stop() ?? Promise.resolve();
  }
}
