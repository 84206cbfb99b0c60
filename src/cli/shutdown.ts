/**
 * Long-running commands (`berth serve`, `berth controller`) stop cleanly on SIGINT or SIGTERM:
 * `stop` runs once (a second signal while it runs is ignored), then the process exits 0, or 1 if
 * stopping failed.
 */
import type { Logger } from 'pino';

export function stopOnSignals(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
