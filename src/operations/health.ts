/**
 * Liveness and readiness. `/healthz` says only that the process answers; `/readyz` that this
 * replica can serve: the metadata database answers and has every migration this build knows,
 * and the blob storage answers. Each check is bounded by a timeout, so a hung backend makes the
 * replica unready within seconds instead of hanging the probe.
 *
 * A failed check's reason is short and names no secret: the backend and the error's code.
 */
import type { OperationsIndex } from '../metadata/operations-store.js';
import type { StorageDriver } from '../storage/driver.js';

export type CheckName = 'database' | 'migrations' | 'storage';

export interface CheckResult {
  ok: boolean;
  /** Why not, in a few words (only when not ok). */
  reason?: string;
}

export interface Readiness {
  ready: boolean;
  checks: Record<CheckName, CheckResult>;
}

/** A path no blob or upload can have: `stat` of it must simply answer "absent". */
const probePath = 'readyz-probe';

export class Health {
  constructor(
    private readonly store: OperationsIndex,
    private readonly storage: StorageDriver,
    private readonly timeoutMs = 3000,
  ) {}

  async readiness(): Promise<Readiness> {
    const database = await this.check('database', () => this.store.ping());
    const migrations = database.ok
      ? await this.check('migrations', async () => {
          const pending = await this.store.pendingMigrations();
          if (pending.length > 0) throw new Error(`${pending.length} pending (${pending.slice(0, 3).join(', ')})`);
        })
      : { ok: false, reason: 'database unreachable' };
    const storage = await this.check('storage', async () => void (await this.storage.stat(probePath)));
    return { ready: database.ok && migrations.ok && storage.ok, checks: { database, migrations, storage } };
  }

  private async check(name: CheckName, probe: () => Promise<void>): Promise<CheckResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([probe(), timeout]);
      return { ok: true };
    } catch (err) {
      return { ok: false, reason: `${name}: ${shortReason(err)}` };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** An error in a few words: its code (ECONNREFUSED, 57P01, …) or the start of its message. */
function shortReason(err: unknown): string {
  for (let cause: unknown = err, depth = 0; cause instanceof Error && depth < 4; cause = cause.cause, depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Za-z0-9_]{2,40}$/.test(code)) return `unreachable (${code})`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s+/g, ' ').slice(0, 120);
}
