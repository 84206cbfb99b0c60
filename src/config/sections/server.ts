import { z } from 'zod';

/** Where the server listens and how it logs. */
export const serverFields = () => ({
  addr: z.string().default('127.0.0.1:5000').describe('Address to listen on, HOST:PORT (port 0 picks a free port). Env BERTH_ADDR, flag --addr.'),
  dataDir: z.string().default('./data').describe('Directory for blobs and the SQLite metadata database. Env BERTH_DATA, flag --data.'),
  logLevel: z
    .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
    .default('info')
    .describe('Log level; `debug` logs every request. Env BERTH_LOG_LEVEL.'),
  tls: z
    .object({
      cert: z.string().describe('PEM certificate chain file.'),
      key: z.string().describe('PEM private key file.'),
    })
    .optional()
    .describe('Serve HTTPS with this certificate. Without it Berth serves plain HTTP (fine on loopback or behind a TLS proxy).'),
});
