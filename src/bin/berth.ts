#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=1048576 node --max-semi-space-size=2 --heap-growing-percent=200
/** The `berth` command. Entry point only: cli/commands/ parses the arguments; each command loads its implementation when it runs. */
import { berthProgram } from '../cli/commands/index.js';

berthProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    console.error(`berth: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
