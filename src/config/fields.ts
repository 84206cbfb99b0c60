/** Field builders shared by the config sections. Sizes are bytes, durations milliseconds. */
import { z } from 'zod';

export const duration = (description: string, fallback: number) => z.number().int().positive().default(fallback).describe(description);
