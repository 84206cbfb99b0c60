/**
 * The directory Berth's package.json is in, found from a module's own URL. A module cannot count
 * its way up to it: the same source runs from src/ (tsx), from dist/ as tsc emits it, and from
 * the bundled `berth` command's chunks (dist/bin/chunks/, `scripts/bundle.mjs`), each at another
 * depth.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const found = new Map<string, string>();

/** The nearest directory at or above `moduleUrl`'s that holds a package.json; throws if there is none. */
export function packageRoot(moduleUrl: string): string {
  const start = dirname(fileURLToPath(moduleUrl));
  const known = found.get(start);
  if (known !== undefined) return known;
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) {
      found.set(start, dir);
      return dir;
    }
    if (dirname(dir) === dir) throw new Error(`no package.json above ${start}`);
  }
}
