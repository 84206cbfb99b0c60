import { z } from 'zod';
import { duration } from '../fields.js';

export const gcSection = () =>
  z
    .object({
      graceMs: duration('`berth gc` keeps unreferenced blobs pushed more recently than this.', 3600 * 1000),
    })
    .default({})
    .describe('Garbage collection (`berth gc`).');
