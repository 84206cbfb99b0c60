import { z } from 'zod';

export const secretsSection = () =>
  z
    .object({
      fileDir: z
        .string()
        .min(1)
        .optional()
        .describe(
          'The only directory whose files a sync rule made through the API may name as `passwordFile` or `tokenFile` (relative names resolve inside it; `..` and symlinks leading out are refused). Unset: such file references are refused. Files named in this configuration file are not restricted.',
        ),
      envPrefix: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'an environment variable name prefix, e.g. BERTH_SYNC_')
        .optional()
        .describe(
          "The prefix every environment variable a sync rule made through the API names as `passwordEnv` must have (e.g. `BERTH_SYNC_`). Unset: such variable references are refused, so an API caller can never read the server's own environment.",
        ),
    })
    .default({})
    .describe(
      'Server files and environment variables that owners may reference through the management API (sync rule source credentials). Owners are not the host operator: without these settings they can give credentials inline only.',
    );
