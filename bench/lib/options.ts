/**
 * The command line every bench entry point takes (scripts/bench.sh passes the same flags to each):
 * `--quick`, `--reps N`, `--only GROUP[,GROUP]`, `--candidate`, `--profile`, `--doc FILE`, `--keep`,
 * `--report-only RESULTS.json`, `--wrk-seconds N`. Each entry point reads the ones it uses.
 */
import { parseArgs } from 'node:util';

const options = {
  quick: { type: 'boolean', default: false },
  reps: { type: 'string' },
  only: { type: 'string' },
  candidate: { type: 'string', default: 'berth' },
  profile: { type: 'string', default: '2' },
  doc: { type: 'string' },
  keep: { type: 'boolean', default: false },
  'report-only': { type: 'string' },
  'wrk-seconds': { type: 'string' },
} as const;

export function parseBenchOptions() {
  return parseArgs({ options, allowPositionals: false }).values;
}
