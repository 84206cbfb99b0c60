#!/bin/sh
//usr/bin/true; case "$1" in serve | controller) exec env MALLOC_MMAP_THRESHOLD_=1048576 node --max-semi-space-size=2 --heap-growing-percent=200 "$0" "$@" ;; esac; exec node "$0" "$@"
/**
 * The `berth` command. Entry point only: cli/commands/ parses the arguments; each command loads its
 * implementation when it runs.
 *
 * The two lines above are read by the shell, not by Node (to JavaScript the second is a comment):
 * the long-running commands get the V8 flags and the allocator setting their memory needs
 * (docs/operations.md, "Memory"), every other command a plain `node`. Any V8 flag on the command
 * line makes Node drop its built-in code cache (the flags' hash no longer matches), and each
 * client command then compiles the Node modules it loads from source: ~20–35 ms of a `berth
 * token` on the project's 2-core machine (bench/notes.md, "Client start-up").
 */
import { berthProgram } from '../cli/commands/index.js';

berthProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    console.error(`berth: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
