/**
 * Turns a failed request into a sentence a person can act on: what happened, then what to do.
 * Never raw JSON. The server's own message (already a sentence for console endpoints, a short
 * clause for the management API) is kept where it says something the status does not.
 */

function clause(message: string): string {
  const text = message.trim().replace(/\.$/, '');
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : '';
}

function missingText(detail: unknown): string | undefined {
  const missing = (detail as { missing?: Array<{ type?: string; name?: string; actions?: string[] }> } | undefined)?.missing;
  if (!Array.isArray(missing) || missing.length === 0) return undefined;
  return missing
    .map((m) => (m.type === 'registry' && m.name === 'admin' ? 'owner rights' : `${(m.actions ?? []).join(', ') || 'access'} on ${m.name ?? 'it'}`))
    .join('; ');
}

export function sentenceFor(method: string, status: number, code: string, message: string, detail: unknown): string {
  const said = clause(message);
  // Console endpoints answer with full sentences already.
  if (/[.!?]$/.test(message.trim()) && message.length > 20) return message.trim();
  switch (status) {
    case 400:
      return `${said || 'The request was refused'}. Correct it and try again.`;
    case 401:
      return 'Your session has ended. Sign in again.';
    case 403: {
      if (code === 'DENIED' && missingText(detail))
        return `You may not do this: it needs ${missingText(detail)}. Ask an owner of the registry for that permission.`;
      return `${said || 'This is not allowed'}. Ask an owner of the registry if you need it.`;
    }
    case 404:
      return `${said || 'Not found'}. It may have been deleted or renamed: go back to the list and reload it.`;
    case 409:
      return `${said || 'That conflicts with something that exists'}. Choose another name, or change the existing one.`;
    case 413:
      return `${said || 'The request is too large'}. Send less at once.`;
    case 429:
      return `${said || 'Too many requests'}. Wait a minute, then try again.`;
    default:
      if (status >= 500) {
        return method === 'GET'
          ? 'Berth could not answer (a server error). Reload in a moment; if it keeps failing, the server log says why.'
          : 'Berth could not complete this (a server error); nothing may have changed. Try again; if it keeps failing, the server log says why.';
      }
      return `${said || `The request failed (${status})`}. Try again.`;
  }
}
