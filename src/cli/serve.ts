/** `berth serve`: run the registry until SIGINT/SIGTERM. */
import { createApp } from '../app/app.js';
import { loadConfig } from '../config/load.js';
import { openMetadata, openStorage } from '../app/backends.js';
import { createLogger } from '../shared/logger.js';
import { stopOnSignals } from './shutdown.js';
import { isLoopbackHost } from '../shared/loopback.js';
import { collectWhenIdle } from '../shared/idle-collection.js';

export interface ServeOptions {
  config?: string;
  addr?: string;
  data?: string;
}

export async function serve(options: ServeOptions): Promise<void> {
  const config = loadConfig({ file: options.config, overrides: { addr: options.addr, dataDir: options.data } });
  const logger = createLogger(config.logLevel, config.logFormat);
  if (!config.tls && !isLoopbackHost(config.addr)) {
    logger.warn({ addr: config.addr }, 'serving plain HTTP on a non-loopback address: put TLS in front or set tls.cert/tls.key');
  }
  const app = createApp({ config, storage: await openStorage(config), metadata: await openMetadata(config), logger });
  if (config.auth.enabled) {
    const owner = await app.auth.principals.bootstrap();
    await app.auth.principals.ensureAdminUser();
    if (owner?.password) {
      // Straight to the terminal, never through the logger: log pipelines must not carry secrets.
      process.stderr.write(
        `\nBerth created the first owner. This password is shown only once:\n  user: ${owner.name}\n  password: ${owner.password}\n` +
          `Log in with: berth login ${config.addr} --username ${owner.name} --password-stdin\n\n`,
      );
    } else if (owner) {
      logger.info({ user: owner.name }, 'created the bootstrap owner from configuration');
    }
  } else {
    logger.warn('auth is disabled (auth.enabled=false): anyone who can reach this address can push, pull and delete');
  }
  const url = await app.listen();
  logger.info({ url, dataDir: config.dataDir, auth: config.auth.enabled }, 'listening');
  // What a burst of requests left in the old generation goes once the server is quiet (docs/operations.md, "Memory").
  const idle = collectWhenIdle({}, ({ before, after }) =>
    logger.debug({ beforeMiB: Math.round(before / 2 ** 20), afterMiB: Math.round(after / 2 ** 20) }, 'full collection while idle'),
  );
  stopOnSignals(logger, () => {
    idle.stop();
    return app.close();
  });
}
