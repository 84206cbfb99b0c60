/**
 * Repository changes as events. Every manifest push and delete through the registry writes event
 * rows (the outbox) in the change's own transaction, so a committed change always has its events
 * and a rolled-back one never. What the rows say is not decided here: the registry is given a
 * `ChangeEvents` builder (the app passes the webhook payload builder, `events/payload.ts`), calls
 * it with the change and who made it, and the metadata store writes the rows as opaque data.
 */
import type { NewEvent } from '../metadata/event-store.js';
import type { ManifestChange, Pusher } from '../metadata/store.js';

/** Who made a change (the push record's principal); re-exported for the layers above the registry. */
export type { Pusher };

/** The request behind a change, as webhook payloads carry it (ACR's `request` object). */
export interface RequestInfo {
  id: string;
  host: string;
  method: string;
  useragent: string;
}

/** Who made a change and through which request; both optional (auth off, server-side changes). */
export interface ChangeContext {
  actor?: Pusher | undefined;
  request?: RequestInfo | undefined;
}

/** A committed change (what its transaction found) with who made it and through which request. */
export interface ImageChange extends ManifestChange {
  actor: Pusher | undefined;
  request: RequestInfo | undefined;
}

/**
 * Builds the outbox rows of a change. Runs inside the change's transaction, possibly more than
 * once (a retried transaction), so it must only compute; the rows are stored as returned.
 */
export type ChangeEvents = (change: ImageChange, now: number) => readonly NewEvent[];
