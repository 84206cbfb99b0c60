/** Running a command the way the e2e tests need: stdin in, everything out, never throwing on exit codes. */
import { spawn } from 'node:child_process';

/** A bound on a hung command so the run fails with its output; not a timing assertion. */
export const commandTimeoutMs = 180_000;

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `file` (no shell) with `input` on stdin; resolves on exit whatever the code. */
export function exec(file: string, args: readonly string[], env: NodeJS.ProcessEnv, input = ''): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, timeout: commandTimeoutMs, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** `what exited N` with both streams, for assertion messages. */
export function described(what: string, result: ExecResult): string {
  return `${what} exited ${result.code}\n--- stderr ---\n${result.stderr.trim()}\n--- stdout ---\n${result.stdout.trim()}`;
}
