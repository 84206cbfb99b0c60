/**
 * What the command definitions share. The modules in commands/ hold only arguments, options and
 * descriptions (and import commander and types); each action imports its implementation when it
 * runs, so `berth --help` or `berth login` load neither the server nor @kubernetes/client-node.
 */
import { InvalidArgumentError, type Command } from 'commander';

/** Adds the flags of commands that talk to a running registry's API. */
export type Managed = (command: Command) => Command;

export const managed: Managed = (command) =>
  command
    .option('--registry <host:port>', 'the registry (env BERTH_REGISTRY)')
    .option('--username <name>', 'log in as this owner instead of the saved `berth login`')
    .option('--password-stdin', "read that owner's password from standard input")
    .option('--json', 'print JSON for scripts');

/** A repeatable option's values. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

export const positiveInteger = (value: string): number => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
};

export const positive = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
};
