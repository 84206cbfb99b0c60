import { z } from 'zod';

export const egressSection = () =>
  z
    .object({
      allowPrivateNetworks: z
        .boolean()
        .default(false)
        .describe('Allow outbound requests (webhook deliveries, import and sync sources) to private, loopback, link-local and other non-public addresses.'),
      allow: z
        .array(z.string().min(1))
        .default([])
        .describe('Destinations allowed although non-public: CIDRs (`10.1.0.0/16`, `::1/128`), host names (`registry.internal`) or `host:port`.'),
    })
    .default({})
    .describe(
      "Which addresses Berth may connect to on a user's behalf. Checked on every connection, after DNS resolution and on every redirect hop, so a webhook or sync URL cannot probe the internal network.",
    );
