import { isCodedError } from '../shared/coded-error.js';

const maxErrorLength = 1000;

/** A failure as stored in status rows: RegistryErrors say what to do; anything else is a bug, logged in full. */
export function errorText(err: unknown): string {
  const text = isCodedError(err) || err instanceof Error ? err.message : String(err);
  return text.length > maxErrorLength ? `${text.slice(0, maxErrorLength - 1)}…` : text;
}
