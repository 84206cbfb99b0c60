/**
 * Asking a Berth registry whether pulls from a repository need an attestation
 * (`GET /api/v1/attestations/required`, public): the PullBinding controller and the kubelet
 * credential provider do before minting pull credentials when told to (`requireAttestations`).
 */
import type { AttestationRequirementView } from '../api/attestations.js';
import { ApiError } from '../api/errors.js';
import { urls } from '../api/urls.js';
import { drain, HttpClient, readBounded } from './http.js';
import { registryUrl } from './reference.js';

let defaultHttp: HttpClient | undefined;

/** The requirement for `repository` at the Berth `server` (`host[:port]`). Throws ApiError UPSTREAM_* when it cannot tell. */
export async function attestationRequirement(server: string, repository: string, http?: HttpClient): Promise<AttestationRequirementView> {
  const client = http ?? (defaultHttp ??= new HttpClient({ retries: { attempts: 2 }, userAgent: 'berth-kube' }));
  const url = `${registryUrl(server)}${urls.api.attestationRequirement(repository)}`;
  let res;
  try {
    res = await client.send({ method: 'GET', url, retry: true });
  } catch (err) {
    throw new ApiError('UPSTREAM_UNREACHABLE', `cannot ask ${server} for its attestation rules: ${(err as Error).message}`);
  }
  try {
    if (res.status !== 200)
      throw new ApiError('UPSTREAM_INVALID', `${server} answered ${res.status} for its attestation rules (a Berth without attestations?)`);
    const body = JSON.parse(
      (await readBounded(res, 64 * 1024, () => new ApiError('UPSTREAM_INVALID', 'the answer is too large'))).toString('utf8'),
    ) as Partial<AttestationRequirementView>;
    if (typeof body.required !== 'boolean' || !Array.isArray(body.rules))
      throw new ApiError('UPSTREAM_INVALID', `${server} sent an invalid attestation requirement`);
    return { repository, required: body.required, rules: body.rules.filter((r): r is string => typeof r === 'string') };
  } finally {
    await drain(res);
    res.release();
  }
}
