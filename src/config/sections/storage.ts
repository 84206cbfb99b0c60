import { z } from 'zod';
import { duration } from '../fields.js';

export const storageSection = () =>
  z
    .object({
      driver: z
        .enum(['filesystem', 's3'])
        .default('filesystem')
        .describe('Blob storage driver: `filesystem` (one machine) or `s3` (any S3-compatible service; for several replicas).'),
      root: z.string().optional().describe('Root directory for the filesystem driver; default `<dataDir>/storage`.'),
      s3: z
        .object({
          bucket: z.string().min(3).describe('Bucket (must exist).'),
          prefix: z.string().default('').describe('Key prefix inside the bucket, e.g. `berth/`; lets several registries share a bucket.'),
          region: z.string().default('us-east-1').describe('Region; any value for services that ignore it.'),
          endpoint: z.string().url().optional().describe('Endpoint URL for S3-compatible services (Ceph RGW, MinIO, R2); default AWS.'),
          forcePathStyle: z.boolean().default(false).describe('Path-style addressing (`endpoint/bucket/key`), as most self-hosted services need.'),
          accessKeyId: z
            .string()
            .optional()
            .describe(
              "Static access key id. Without it the AWS SDK's default chain is used (env `AWS_ACCESS_KEY_ID`, web identity, instance role): keyless on AWS.",
            ),
          secretAccessKeyFile: z
            .string()
            .optional()
            .describe(
              'File holding the secret access key for `accessKeyId` (env `AWS_SECRET_ACCESS_KEY` also works); never put the secret in the config file.',
            ),
          redirect: z.boolean().default(false).describe('Answer blob GETs with a 307 to a presigned URL, so bytes flow from storage to the client directly.'),
          redirectTtlMs: duration('Lifetime of presigned blob URLs.', 20 * 60 * 1000),
          partSizeBytes: z
            .number()
            .int()
            .min(5 * 1024 * 1024)
            .default(16 * 1024 * 1024)
            .describe('Multipart part size for uploads and copies (S3 requires at least 5 MiB).'),
        })
        .optional()
        .describe('Settings of the `s3` driver.'),
    })
    .default({})
    .refine((s) => s.driver !== 's3' || s.s3 !== undefined, { message: 'storage.driver s3 needs the storage.s3 section (at least a bucket)', path: ['s3'] })
    .describe('Where blob bytes live.');
