/**
 * A throwaway TLS identity for a loopback server in a test: a self-signed P-256 certificate for
 * 127.0.0.1 (also its own CA), made with openssl, valid for a day.
 */
import { join } from 'node:path';
import { run } from './clients.js';

/** Writes `<name>.crt` and `<name>.key` into `dir`; returns their paths. */
export async function loopbackCertificate(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  return { cert, key };
}
