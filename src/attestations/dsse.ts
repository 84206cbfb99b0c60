/**
 * DSSE (Dead Simple Signing Envelope) signing: the signature covers the pre-authentication
 * encoding of the payload type and payload, never the bare payload, so a signature can't be
 * replayed under another type. https://github.com/secure-systems-lab/dsse/blob/master/protocol.md
 *
 * Written by hand for signing because it is five lines and runs on the push path, where loading
 * the sigstore libraries would cost start time and memory; verification uses @sigstore/verify
 * (`verify.ts`), whose PAE is the same (a unit test checks both agree).
 */
import { sign, type KeyObject } from 'node:crypto';

export interface Envelope {
  payload: string;
  payloadType: string;
  signatures: Array<{ sig: string; keyid: string }>;
}

/** PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII decimal bytes. */
export function preAuthEncoding(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `, 'ascii'), type, Buffer.from(` ${payload.length} `, 'ascii'), payload]);
}

/** Signs `payload` (ECDSA with SHA-256, DER signature, as cosign writes). `keyid` is left empty, as sigstore-js does: the bundle's key hint names the key. */
export function signEnvelope(payloadType: string, payload: Buffer, key: KeyObject): Envelope {
  const sig = sign('sha256', preAuthEncoding(payloadType, payload), key);
  return { payload: payload.toString('base64'), payloadType, signatures: [{ sig: sig.toString('base64'), keyid: '' }] };
}
