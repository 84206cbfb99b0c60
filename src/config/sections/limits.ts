import { z } from 'zod';
import { duration } from '../fields.js';

export const limitsSection = () =>
  z
    .object({
      maxManifestBytes: z
        .number()
        .int()
        .positive()
        .default(4 * 1024 * 1024)
        .describe('Largest manifest accepted; larger ones get 413 SIZE_INVALID.'),
      uploadTtlMs: duration('An upload session idle this long is abandoned and removed.', 24 * 3600 * 1000),
      uploadSweepIntervalMs: duration('How often the server removes abandoned upload sessions.', 10 * 60 * 1000),
    })
    .default({})
    .describe('Bounds on what clients may send and how long unfinished work is kept.');
