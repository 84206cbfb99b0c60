// Trims a production node_modules for the container image (Containerfile's build stage): type
// declarations, source maps, TypeScript sources, documentation and the native SQLite binding's
// build intermediates are not needed to run. Licences stay. Usage: node prune.mjs <node_modules>
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2];
if (!root) throw new Error('usage: node prune.mjs <node_modules directory>');

const droppedFile = /(\.d\.[cm]?ts|\.[cm]?ts|\.map|\.md|\.markdown|\.tsbuildinfo)$/i;
const kept = /^(licen[cs]e|notice|copying)/i;
/** better-sqlite3 needs only build/Release/better_sqlite3.node at run time. */
const sqliteIntermediates = [
  'deps',
  'src',
  'build/deps',
  'build/Release/obj',
  'build/Release/obj.target',
  'build/Release/.deps',
  'build/Release/test_extension.node',
];

let freed = 0;
function remove(path) {
  freed += size(path);
  rmSync(path, { recursive: true, force: true });
}
function size(path) {
  const info = statSync(path, { throwIfNoEntry: false });
  if (!info) return 0;
  if (!info.isDirectory()) return info.size;
  return readdirSync(path).reduce((sum, name) => sum + size(join(path, name)), 0);
}
function walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path);
    else if (entry.isFile() && droppedFile.test(entry.name) && !kept.test(entry.name)) remove(path);
  }
}

for (const part of sqliteIntermediates) remove(join(root, 'better-sqlite3', part));
for (const file of readdirSync(join(root, 'better-sqlite3', 'build', 'Release'), { throwIfNoEntry: false }) ?? []) {
  if (file.endsWith('.a')) remove(join(root, 'better-sqlite3', 'build', 'Release', file));
}
walk(root);
console.log(`prune.mjs: removed ${(freed / 1048576).toFixed(1)} MiB from ${root}`);
