/**
 * S3 errors as the storage layer reports them: "not found" told apart from everything else, and
 * every other failure turned into a message that names the operation, the bucket and the likely
 * cause (bad credentials, missing bucket), never the credentials themselves.
 */
import { S3ServiceException } from '@aws-sdk/client-s3';

export class S3StorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'S3StorageError';
  }
}

export function errorCode(err: unknown): string | undefined {
  return err instanceof S3ServiceException ? err.name : (err as { name?: string } | undefined)?.name;
}

export function isNotFound(err: unknown): boolean {
  const code = errorCode(err);
  if (code === 'NoSuchKey') return true;
  // HEAD responses have no body, so the SDK only knows the status.
  return code === 'NotFound' || (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404 && code !== 'NoSuchBucket');
}

/** A message naming the operation, the bucket and S3's reason, with a hint for the usual causes. */
export function describeS3Error(err: unknown, what: string, bucket: string): Error {
  if (err instanceof S3StorageError) return err;
  if (!(err instanceof S3ServiceException)) {
    const reason = err instanceof Error ? err.message : String(err);
    return new S3StorageError(`S3 ${what} in bucket ${bucket} failed: ${reason}`, { cause: err });
  }
  const status = err.$metadata.httpStatusCode;
  const hints: Record<string, string> = {
    InvalidAccessKeyId: 'the access key id is unknown to the service (storage.s3.accessKeyId)',
    SignatureDoesNotMatch: 'the secret key does not match the access key id (storage.s3.secretAccessKeyFile)',
    AccessDenied: 'the credentials may not do this (check the bucket policy or IAM role)',
    NoSuchBucket: 'the bucket does not exist (storage.s3.bucket; create it first)',
  };
  const hint = hints[err.name] ?? (status === 403 ? 'access denied: check storage.s3 credentials and the bucket policy' : undefined);
  return new S3StorageError(`S3 ${what} in bucket ${bucket} failed: ${err.name}${status ? ` (HTTP ${status})` : ''}${hint ? `: ${hint}` : ''}`, { cause: err });
}
