/**
 * The auth and import benches each own one section of docs/benchmarks.md, between their own
 * start/end marker comments: a rerun replaces the section in place, and a file without it gets it
 * appended (or is created).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function insertMarkedSection(docPath: string, section: string, markers: { start: string; end: string }): Promise<void> {
  const old = await readFile(docPath, 'utf8').catch(() => null);
  let next: string;
  if (old === null) {
    next = `${section}\n`;
  } else {
    const a = old.indexOf(markers.start);
    const b = old.indexOf(markers.end, a === -1 ? 0 : a);
    next = a !== -1 && b !== -1 ? old.slice(0, a) + section + old.slice(b + markers.end.length) : `${old.replace(/\s*$/, '')}\n\n${section}\n`;
  }
  await mkdir(dirname(docPath), { recursive: true });
  await writeFile(docPath, next.endsWith('\n') ? next : `${next}\n`);
}
