/**
 * The least a registry must do with a pushed blob, as a yardstick for bench/push-limits.ts: an HTTP
 * server that takes a PUT body, hashes it with SHA-256 while writing it to a new file under the
 * directory it was given (kept, as a registry keeps a blob) through the same batched file sink as
 * Berth's filesystem driver (src/storage/batched-file-writer.ts), renames the file to its digest and
 * answers 201 with the digest. No routing, no database, no checks: what is left of Berth's push is
 * the part no registry can skip.
 *
 *   node --import tsx bench/lib/ingest-server.ts <dir>     prints `http://127.0.0.1:<port>` once listening
 */
import { createHash } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BatchedFileWriter } from '../../src/storage/batched-file-writer.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: ingest-server.ts <dir>');
let next = 0;
const server = createServer((req, res) => {
  const hash = createHash('sha256');
  const path = join(dir, `upload-${process.pid}-${next++}`);
  const hashing = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  open(path, 'w')
    .then((handle) => pipeline(req, hashing, new BatchedFileWriter(handle)))
    .then(async () => {
      const digest = `sha256:${hash.digest('hex')}`;
      await rename(path, join(dir, digest.replace(':', '-')));
      res.writeHead(201, { 'Docker-Content-Digest': digest }).end();
    })
    .catch((err: unknown) => {
      res.writeHead(500).end(String(err));
    });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
