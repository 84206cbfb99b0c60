/**
 * An S3-compatible service for tests. With env BERTH_TEST_S3_ENDPOINT, BERTH_TEST_S3_ACCESS_KEY
 * and BERTH_TEST_S3_SECRET_KEY that service is used; otherwise a private Ceph RADOS Gateway is
 * started once per test process (scripts/s3/start.sh, ~2.5 s) and stopped when the process exits.
 *
 * Buckets are named from a hash of a key (a server's data directory), so every server on one data
 * directory (a restart, replicas, a child process given the same config) shares one bucket.
 */
import { spawnSync, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import type { ConfigInput } from '../../src/config/schema.js';

// Quiet in test output, as Berth's own S3 driver is (src/storage/s3.ts says why); the driver's own
// test clears it for the process it checks.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

export interface S3Service {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A file holding the secret (mode 0600), for `storage.s3.secretAccessKeyFile`. */
  secretAccessKeyFile: string;
}

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const region = 'us-east-1';
let service: Promise<S3Service> | undefined;

/** The service for this process, started on first use. */
export function s3Service(): Promise<S3Service> {
  service ??= locate();
  return service;
}

async function locate(): Promise<S3Service> {
  const endpoint = process.env['BERTH_TEST_S3_ENDPOINT'];
  const accessKeyId = process.env['BERTH_TEST_S3_ACCESS_KEY'];
  const secretAccessKey = process.env['BERTH_TEST_S3_SECRET_KEY'];
  if (endpoint && accessKeyId && secretAccessKey) return { endpoint, region, accessKeyId, secretAccessKey, secretAccessKeyFile: secretFile(secretAccessKey) };
  const { stdout } = await promisify(execFile)('bash', [join(repoRoot, 'scripts', 's3', 'start.sh')], {
    maxBuffer: 1024 * 1024,
    env: { ...process.env, OWNER_PID: String(process.pid) }, // stops itself should we be killed
  });
  const values = Object.fromEntries(
    stdout
      .split('\n')
      .map((line) => /^([A-Z_]+)=(.*)$/.exec(line.trim()))
      .filter((match): match is RegExpExecArray => match !== null)
      .map((match) => [match[1], match[2]]),
  ) as Record<string, string | undefined>;
  const { DIR: dir, ENDPOINT: started, ACCESS_KEY: key, SECRET_KEY: secret } = values;
  if (!dir || !started || !key || !secret) throw new Error(`scripts/s3/start.sh printed no service:\n${stdout}`);
  stopAtExit(dir);
  return { endpoint: started, region, accessKeyId: key, secretAccessKey: secret, secretAccessKeyFile: secretFile(secret) };
}

/** Stops the private service when this process ends, however it ends. */
function stopAtExit(dir: string): void {
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    spawnSync('bash', [join(repoRoot, 'scripts', 's3', 'stop.sh'), dir], { stdio: 'ignore' });
  };
  process.once('exit', stop);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stop();
      process.kill(process.pid, signal); // our listener is gone: the default action ends the process
    });
  }
}

function secretFile(secret: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-s3-secret-'));
  const file = join(dir, 'secret');
  writeFileSync(file, secret, { mode: 0o600 });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return file;
}

/** An SDK client for the test service (for tests that look at the bucket directly). */
export async function s3TestClient(options: { secretAccessKey?: string } = {}): Promise<S3Client> {
  const s3 = await s3Service();
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: options.secretAccessKey ?? s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** `berth-` plus a hash of `key`: stable across processes, valid as a bucket name (<= 63 chars). */
export function bucketFor(key: string): string {
  return `berth-${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

/** Creates the bucket unless it exists already (also when another process just created it). */
export async function ensureBucket(bucket: string): Promise<void> {
  const client = await s3TestClient();
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err;
  } finally {
    client.destroy();
  }
}

/** The `storage` section for a server whose blobs live in the bucket dedicated to `key`. */
export async function s3StorageFor(key: string): Promise<NonNullable<ConfigInput['storage']>> {
  const s3 = await s3Service();
  const bucket = bucketFor(key);
  await ensureBucket(bucket);
  return {
    driver: 's3',
    s3: { bucket, endpoint: s3.endpoint, forcePathStyle: true, accessKeyId: s3.accessKeyId, secretAccessKeyFile: s3.secretAccessKeyFile, region: s3.region },
  };
}

/**
 * Every object key in the bucket of `key` (a data directory), for tests that check what storage
 * holds: an empty list if the bucket was never made.
 */
export async function objectKeysFor(key: string): Promise<string[]> {
  const client = await s3TestClient();
  const keys: string[] = [];
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucketFor(key), ContinuationToken: token }));
      for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } catch (err) {
    if ((err as { name?: string }).name !== 'NoSuchBucket') throw err;
  } finally {
    client.destroy();
  }
  return keys.sort();
}

/** The bytes of one object in the bucket of `key`. */
export async function objectContent(key: string, objectKey: string): Promise<Buffer> {
  const client = await s3TestClient();
  try {
    const result = await client.send(new GetObjectCommand({ Bucket: bucketFor(key), Key: objectKey }));
    return Buffer.from(await (result.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  } finally {
    client.destroy();
  }
}

/** Empties and deletes a bucket (for tests' own throwaway buckets on a long-lived service). */
export async function removeBucket(bucket: string): Promise<void> {
  const client = await s3TestClient();
  try {
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      const keys = (page.Contents ?? []).flatMap((object) => (object.Key ? [{ Key: object.Key }] : []));
      if (keys.length === 0) break;
      await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
    }
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    for (const upload of uploads.Uploads ?? []) {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if ((err as { name?: string }).name !== 'NoSuchBucket') throw err;
  } finally {
    client.destroy();
  }
}

/** A private S3 service whose gateway a test can stop and start again (the data stays: the OSD keeps running). */
export interface PrivateS3 {
  service: S3Service;
  /** The `storage` section for a server in the bucket `bucket` (created here). */
  storageFor(bucket: string): Promise<NonNullable<ConfigInput['storage']>>;
  /** Stops the RADOS Gateway: the endpoint refuses connections. */
  stopGateway(): Promise<void>;
  /** Starts it again on the same port. */
  startGateway(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a Ceph RGW of this test's own (scripts/s3/start.sh), whatever BERTH_TEST_S3_ENDPOINT says. */
export async function startPrivateS3(): Promise<PrivateS3> {
  const { stdout } = await promisify(execFile)('bash', [join(repoRoot, 'scripts', 's3', 'start.sh')], {
    maxBuffer: 1024 * 1024,
    env: { ...process.env, OWNER_PID: String(process.pid) },
  });
  const value = (name: string) => new RegExp(`^${name}=(.*)$`, 'm').exec(stdout)?.[1];
  const [dir, endpoint, accessKeyId, secretAccessKey] = [value('DIR'), value('ENDPOINT'), value('ACCESS_KEY'), value('SECRET_KEY')];
  if (!dir || !endpoint || !accessKeyId || !secretAccessKey) throw new Error(`scripts/s3/start.sh printed no service:\n${stdout}`);
  stopAtExit(dir);
  const service: S3Service = { endpoint, region, accessKeyId, secretAccessKey, secretAccessKeyFile: secretFile(secretAccessKey) };
  const pidFile = join(dir, 'run', 'client.rgw.pid');
  const client = () =>
    new S3Client({
      endpoint,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  const answers = async () =>
    (await fetch(`${endpoint}/`)
      .then((r) => r.status)
      .catch(() => 0)) > 0;
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 60_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`the private RGW: ${what} took over a minute`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  return {
    service,
    async storageFor(bucket) {
      const s3 = client();
      try {
        await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      } finally {
        s3.destroy();
      }
      return { driver: 's3', s3: { bucket, endpoint, forcePathStyle: true, accessKeyId, secretAccessKeyFile: service.secretAccessKeyFile, region } };
    },
    async stopGateway() {
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      const running = () => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      process.kill(pid, 'SIGTERM');
      // RGW stops listening at once but may take long to exit, holding its pid file: a restart
      // would fail on the lock. Past a few seconds it is killed outright.
      const deadline = Date.now() + 5000;
      while (running() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      if (running()) process.kill(pid, 'SIGKILL');
      await until('stopping', async () => !running() && !(await answers()));
    },
    async startGateway() {
      await promisify(execFile)('radosgw', ['-c', join(dir, 'ceph.conf'), '-n', 'client.rgw']);
      await until('starting', answers);
    },
    async stop() {
      spawnSync('bash', [join(repoRoot, 'scripts', 's3', 'stop.sh'), dir], { stdio: 'ignore' });
    },
  };
}
