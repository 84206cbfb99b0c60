import assert from 'node:assert/strict';
import { constants, createHmac, createSecretKey, generateKeyPairSync, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeJwt, jwtVerify, SignJWT } from 'jose';
import { claimsMac, decodeClaims, JwtError, macParameter, readUnverified, signJwt, verifyJwt, type JwtVerifyOptions } from './jwt.js';

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const otherEc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 });
const nowMs = 1_800_000_000_000;
const now = Math.floor(nowMs / 1000);

const options: JwtVerifyOptions = {
  algorithms: ['ES256', 'EdDSA'],
  typ: 'at+jwt',
  issuer: 'berth',
  audience: 'registry',
  clockToleranceSeconds: 30,
  now: nowMs,
  requiredClaims: ['exp', 'iat', 'sub'],
};

const good = () => ({
  access: [{ type: 'repository', name: 'a/b', actions: ['pull'] }],
  iss: 'berth',
  aud: 'registry',
  sub: 'p1',
  iat: now,
  nbf: now,
  exp: now + 300,
});
const key = (k: KeyObject) => () => Promise.resolve(k);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

async function refusedWith(token: string, code: string, k: KeyObject = ec.publicKey, opts: Partial<JwtVerifyOptions> = {}): Promise<void> {
  await assert.rejects(verifyJwt(token, key(k), { ...options, ...opts }), (err: unknown) => {
    assert.ok(err instanceof JwtError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  });
}

describe('shared/jwt', () => {
  it('a token it signs verifies here and with jose; one jose signs verifies here', async () => {
    const ours = signJwt({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' }, good(), ec.privateKey);
    const mine = await verifyJwt(ours, key(ec.publicKey), options);
    assert.deepEqual(mine.claims, good());
    assert.equal(mine.header.kid, 'k1');
    const viaJose = await jwtVerify(ours, ec.publicKey, { issuer: 'berth', audience: 'registry', typ: 'at+jwt', currentDate: new Date(nowMs) });
    assert.deepEqual(viaJose.payload, good());

    const joseSigned = await new SignJWT(good()).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k2' }).sign(ec.privateKey);
    assert.deepEqual((await verifyJwt(joseSigned, key(ec.publicKey), options)).claims, good());
    const edSigned = await new SignJWT(good()).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt' }).sign(ed.privateKey);
    assert.deepEqual((await verifyJwt(edSigned, key(ed.publicKey), options)).claims, good());
    assert.deepEqual(decodeClaims(ours), decodeJwt(ours));
  });

  it('refuses other algorithms: none, HS256 with the public key as secret, ES256 with a key of another curve or kind', async () => {
    const body = `${b64(good())}`;
    await refusedWith(`${b64({ alg: 'none', typ: 'at+jwt' })}.${body}.`, 'ERR_JOSE_ALG_NOT_ALLOWED');
    const header = b64({ alg: 'HS256', typ: 'at+jwt' });
    const secret = ec.publicKey.export({ format: 'pem', type: 'spki' });
    const mac = createHmac('sha256', secret).update(`${header}.${body}`).digest('base64url');
    await refusedWith(`${header}.${body}.${mac}`, 'ERR_JOSE_ALG_NOT_ALLOWED');
    const token = signJwt({ alg: 'ES256', typ: 'at+jwt' }, good(), ec.privateKey);
    await refusedWith(token, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', p384.publicKey);
    await refusedWith(token, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', ed.publicKey);
    await refusedWith(token, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', ec.privateKey);
    await refusedWith(token, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', otherEc.publicKey);
    await assert.rejects(
      verifyJwt(token, () => Promise.resolve(undefined), options),
      /no key matches/,
    );
  });

  it('refuses a changed header, claims or signature, and crit or b64 headers', async () => {
    const [h, c, s] = signJwt({ alg: 'ES256', typ: 'at+jwt' }, good(), ec.privateKey).split('.') as [string, string, string];
    await refusedWith(`${h}.${b64({ ...good(), sub: 'p2' })}.${s}`, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    await refusedWith(`${b64({ alg: 'ES256', typ: 'at+jwt', kid: 'x' })}.${c}.${s}`, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    const flipped = Buffer.from(s, 'base64url');
    flipped[10] = (flipped[10] ?? 0) ^ 1;
    await refusedWith(`${h}.${c}.${flipped.toString('base64url')}`, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    await refusedWith(`${h}.${c}.${s.slice(0, -4)}`, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    for (const extra of [{ crit: ['exp'] }, { b64: false, crit: ['b64'] }, { b64: true }]) {
      const header = { alg: 'ES256', typ: 'at+jwt', ...extra };
      await refusedWith(signJwt(header as never, good(), ec.privateKey), 'ERR_JWS_INVALID');
    }
  });

  it('verifies a token read before (readUnverified) on that one parse, with every check as for the string', async () => {
    const ours = signJwt({ alg: 'ES256', typ: 'at+jwt' }, good(), ec.privateKey);
    const read = readUnverified(ours);
    assert.deepEqual(read.claims, good());
    const verified = await verifyJwt(read, key(ec.publicKey), options);
    assert.equal(verified.claims, read.claims, 'the claims read before are the ones returned, not decoded again');
    // The signature is still checked over the token's bytes, and the claim rules still apply.
    const [h, , s] = ours.split('.') as [string, string, string];
    const forged = readUnverified(`${h}.${b64({ ...good(), sub: 'p2' })}.${s}`);
    await assert.rejects(verifyJwt(forged, key(ec.publicKey), options), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
    await assert.rejects(verifyJwt(read, key(otherEc.publicKey), options), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
    await assert.rejects(verifyJwt(read, key(ec.publicKey), { ...options, now: nowMs + 3_600_000 }), { code: 'ERR_JWT_EXPIRED' });
    await assert.rejects(verifyJwt(read, key(ec.publicKey), { ...options, issuer: 'elsewhere' }), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'iss' });
    assert.throws(() => readUnverified(`${h}.bm90IGpzb24.${s}`), { code: 'ERR_JWT_INVALID' });
  });

  it('refuses what is not a compact JWS with JSON object parts', async () => {
    const token = signJwt({ alg: 'ES256', typ: 'at+jwt' }, good(), ec.privateKey);
    const [h, c, s] = token.split('.') as [string, string, string];
    await refusedWith(`${h}.${c}`, 'ERR_JWS_INVALID');
    await refusedWith(`${token}.x.y`, 'ERR_JWS_INVALID');
    await refusedWith(`${h}x.${c}.${s}`, 'ERR_JWS_INVALID');
    await refusedWith(`${h}+.${c}.${s}`, 'ERR_JWS_INVALID');
    await refusedWith(`${b64([1])}.${c}.${s}`, 'ERR_JWS_INVALID');
    await refusedWith(
      signJwt({ alg: 'ES256', typ: 'at+jwt' }, good(), ec.privateKey).replace(/^[^.]+/, Buffer.from('{"alg":"ES256",').toString('base64url')),
      'ERR_JWS_INVALID',
    );
    const arrayClaims = `${h}.${b64([good()])}`;
    const signed = signJwt({ alg: 'ES256', typ: 'at+jwt' }, good(), ec.privateKey);
    assert.ok(signed);
    await refusedWith(`${arrayClaims}.${s}`, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    assert.throws(() => decodeClaims('a.b'), /Invalid JWT/);
    assert.throws(() => decodeClaims(`${h}.${b64('text')}.${s}`), /JSON object/);
  });

  it('checks typ, issuer, audience, required claims and time like jose', async () => {
    const sign = (claims: Record<string, unknown>, typ = 'at+jwt') => signJwt({ alg: 'ES256', typ }, claims, ec.privateKey);
    assert.ok(await verifyJwt(sign(good(), 'application/AT+JWT'), key(ec.publicKey), options), 'typ is a media type');
    await refusedWith(sign(good(), 'berth-refresh+jwt'), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    await refusedWith(signJwt({ alg: 'ES256' }, good(), ec.privateKey), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    await refusedWith(sign({ ...good(), iss: 'other' }), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    await refusedWith(sign({ ...good(), aud: 'other' }), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    await refusedWith(sign({ ...good(), aud: ['other', 7] }), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    assert.ok(await verifyJwt(sign({ ...good(), aud: ['other', 'registry'] }), key(ec.publicKey), options));
    for (const missing of ['exp', 'iat', 'sub', 'iss', 'aud']) {
      const claims: Record<string, unknown> = good();
      delete claims[missing];
      await refusedWith(sign(claims), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    }
    await refusedWith(sign({ ...good(), exp: now - 31 }), 'ERR_JWT_EXPIRED');
    await refusedWith(sign({ ...good(), exp: now - 30 }), 'ERR_JWT_EXPIRED');
    assert.ok(await verifyJwt(sign({ ...good(), exp: now - 29 }), key(ec.publicKey), options), 'within the clock tolerance');
    await refusedWith(sign({ ...good(), nbf: now + 31 }), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    assert.ok(await verifyJwt(sign({ ...good(), nbf: now + 30 }), key(ec.publicKey), options));
    await refusedWith(sign({ ...good(), exp: String(now + 300) }), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    await refusedWith(sign({ ...good(), iat: 'yesterday' }), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    // The same decisions jose makes for each of these.
    for (const claims of [
      { ...good(), exp: now - 30 },
      { ...good(), nbf: now + 31 },
      { ...good(), aud: 'other' },
    ]) {
      await assert.rejects(
        jwtVerify(sign(claims), ec.publicKey, { issuer: 'berth', audience: 'registry', typ: 'at+jwt', clockTolerance: 30, currentDate: new Date(nowMs) }),
      );
    }
  });

  describe('OIDC tokens (federation): RS256, PS256, ES256 and EdDSA, no typ or audience asked, a maximum age', () => {
    const oidc: JwtVerifyOptions = {
      algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      issuer: 'https://issuer.example',
      clockToleranceSeconds: 30,
      now: nowMs,
      requiredClaims: ['exp', 'iat', 'sub', 'aud'],
      maxTokenAgeSeconds: 600,
    };
    const claims = (extra: Record<string, unknown> = {}) => ({
      iss: 'https://issuer.example',
      sub: 'repo:acme/app:ref:refs/heads/main',
      aud: 'urn:berth:x',
      iat: now - 10,
      exp: now + 300,
      ...extra,
    });
    /** A token signed by hand with node:crypto, so algorithms jose refuses to sign with can be tried. */
    const rawToken = (header: Record<string, unknown>, body: Record<string, unknown>, signer: (input: Buffer) => Buffer) => {
      const input = `${b64(header)}.${b64(body)}`;
      return `${input}.${signer(Buffer.from(input)).toString('base64url')}`;
    };
    const refused = async (token: string, k: KeyObject, code: string, claim?: string) =>
      assert.rejects(verifyJwt(token, key(k), oidc), (err: unknown) => {
        assert.ok(err instanceof JwtError, String(err));
        assert.equal(err.code, code, err.message);
        if (claim !== undefined) assert.equal(err.claim, claim);
        return true;
      });

    it('verifies what jose signs with each algorithm, without typ and for any audience', async () => {
      for (const [alg, pair] of [
        ['RS256', rsa],
        ['PS256', rsa],
        ['ES256', ec],
        ['EdDSA', ed],
      ] as const) {
        const token = await new SignJWT(claims()).setProtectedHeader({ alg, kid: 'k' }).sign(pair.privateKey);
        assert.deepEqual((await verifyJwt(token, key(pair.publicKey), oidc)).claims, claims(), alg);
        assert.deepEqual((await jwtVerify(token, pair.publicKey, { currentDate: new Date(nowMs) })).payload, claims(), `${alg} via jose`);
      }
    });

    it('refuses an RSA key under 2048 bits, a padding other than the algorithm names, and a key of the wrong kind', async () => {
      const small = rawToken({ alg: 'RS256' }, claims(), (input) => cryptoSign('sha256', input, rsa1024.privateKey));
      await refused(small, rsa1024.publicKey, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
      // The same RSA key, but a PKCS#1 v1.5 signature labelled PS256, and a PSS one labelled RS256.
      await refused(
        rawToken({ alg: 'PS256' }, claims(), (input) => cryptoSign('sha256', input, rsa.privateKey)),
        rsa.publicKey,
        'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      );
      await refused(
        rawToken({ alg: 'RS256' }, claims(), (input) =>
          cryptoSign('sha256', input, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }),
        ),
        rsa.publicKey,
        'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      );
      const rsaSigned = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey);
      await refused(rsaSigned, ec.publicKey, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
      await refused(rsaSigned, rsa.privateKey, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
      const hmac = rawToken({ alg: 'HS256' }, claims(), (input) =>
        createHmac('sha256', rsa.publicKey.export({ format: 'pem', type: 'spki' }))
          .update(input)
          .digest(),
      );
      await refused(hmac, rsa.publicKey, 'ERR_JOSE_ALG_NOT_ALLOWED');
      const es384 = rawToken({ alg: 'ES384' }, claims(), (input) => cryptoSign('sha384', input, { key: p384.privateKey, dsaEncoding: 'ieee-p1363' }));
      await refused(es384, p384.publicKey, 'ERR_JOSE_ALG_NOT_ALLOWED');
    });

    it("applies the maximum age to iat as jose does: too old is 'expired' on iat, issued in the future is refused", async () => {
      const sign = (extra: Record<string, unknown>) => new SignJWT(claims(extra)).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey);
      await refused(await sign({ iat: now - 631 }), rsa.publicKey, 'ERR_JWT_EXPIRED', 'iat');
      assert.ok(await verifyJwt(await sign({ iat: now - 630 }), key(rsa.publicKey), oidc), 'age within the maximum plus the tolerance');
      await refused(await sign({ iat: now + 31 }), rsa.publicKey, 'ERR_JWT_CLAIM_VALIDATION_FAILED', 'iat');
      assert.ok(await verifyJwt(await sign({ iat: now + 30 }), key(rsa.publicKey), oidc));
      await refused(await sign({ exp: now - 30 }), rsa.publicKey, 'ERR_JWT_EXPIRED', 'exp');
      await refused(await sign({ nbf: now + 31 }), rsa.publicKey, 'ERR_JWT_CLAIM_VALIDATION_FAILED', 'nbf');
      await refused(await sign({ iss: 'https://other.example' }), rsa.publicKey, 'ERR_JWT_CLAIM_VALIDATION_FAILED', 'iss');
      // jose decides the same for each.
      const joseOptions = { issuer: oidc.issuer, clockTolerance: 30, maxTokenAge: 600, currentDate: new Date(nowMs) };
      await assert.rejects(jwtVerify(await sign({ iat: now - 631 }), rsa.publicKey, joseOptions), /too far in the past/);
      await assert.rejects(jwtVerify(await sign({ iat: now + 31 }), rsa.publicKey, joseOptions), /should be in the past/);
      assert.ok(await jwtVerify(await sign({ iat: now - 630 }), rsa.publicKey, joseOptions));
      for (const missing of ['iat', 'sub', 'aud', 'exp']) {
        const body: Record<string, unknown> = claims();
        delete body[missing];
        await refused(
          await new SignJWT(body).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey),
          rsa.publicKey,
          'ERR_JWT_CLAIM_VALIDATION_FAILED',
          missing,
        );
      }
    });
  });

  it('signs only with a private key that fits the algorithm', () => {
    assert.throws(() => signJwt({ alg: 'ES256', typ: 'at+jwt' }, good(), ec.publicKey), /matching private key/);
    assert.throws(() => signJwt({ alg: 'EdDSA', typ: 'at+jwt' }, good(), ec.privateKey), /matching private key/);
    assert.throws(() => signJwt({ alg: 'ES256', typ: 'at+jwt' }, { ...good(), exp: Number.POSITIVE_INFINITY }, ec.privateKey), /finite/);
  });

  describe('the claims MAC', () => {
    const macKey = createSecretKey(randomBytes(32));
    const otherMacKey = createSecretKey(randomBytes(32));
    const withMac = (o: Partial<JwtVerifyOptions> = {}) => ({ ...options, macKeyFor: () => macKey, ...o });
    const parts = (token: string) => token.split('.') as [string, string, string];
    const headerOf = (token: string) => JSON.parse(Buffer.from(parts(token)[0], 'base64url').toString()) as Record<string, unknown>;
    /** The token with its signature replaced by 64 other bytes: only a MAC can carry it. */
    const badSignature = (token: string) => `${parts(token)[0]}.${parts(token)[1]}.${randomBytes(64).toString('base64url')}`;

    it('is in the header, under the typ, and other verifiers ignore it', async () => {
      const token = signJwt({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' }, good(), ec.privateKey, macKey);
      const header = headerOf(token);
      assert.equal(header[macParameter], claimsMac(macKey, 'at+jwt', parts(token)[1]).toString('base64url'));
      assert.deepEqual((await jwtVerify(token, ec.publicKey, { issuer: 'berth', audience: 'registry', currentDate: new Date(nowMs) })).payload, good());
      assert.deepEqual((await verifyJwt(token, key(ec.publicKey), options)).claims, good(), 'without a MAC key: the signature');
      await refusedWith(badSignature(token), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    });

    it('a matching MAC stands for the signature; the claims and the key are checked all the same', async () => {
      const token = signJwt({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' }, good(), ec.privateKey, macKey);
      assert.deepEqual((await verifyJwt(badSignature(token), key(ec.publicKey), withMac())).claims, good());
      const expired = signJwt({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' }, { ...good(), exp: now - 60 }, ec.privateKey, macKey);
      await refusedWith(badSignature(expired), 'ERR_JWT_EXPIRED', ec.publicKey, withMac());
      await refusedWith(badSignature(token), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', ed.publicKey, withMac());
      await assert.rejects(
        verifyJwt(token, () => Promise.resolve(undefined), withMac()),
        (err: unknown) => err instanceof JwtError && err.code === 'ERR_JWKS_NO_MATCHING_KEY',
      );
    });

    it('a MAC that does not match leaves it to the signature', async () => {
      const token = signJwt({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' }, good(), ec.privateKey, macKey);
      // Another MAC key: the signature decides, and it holds, or it does not.
      assert.deepEqual((await verifyJwt(token, key(ec.publicKey), withMac({ macKeyFor: () => otherMacKey }))).claims, good());
      await refusedWith(badSignature(token), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', ec.publicKey, withMac({ macKeyFor: () => otherMacKey }));
      await refusedWith(badSignature(token), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', ec.publicKey, withMac({ macKeyFor: () => undefined }));
      // Changed claims under the old MAC and signature.
      const widened = b64({ ...good(), access: [{ type: 'repository', name: 'a/c', actions: ['push'] }] });
      await refusedWith(`${parts(token)[0]}.${widened}.${parts(token)[2]}`, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', ec.publicKey, withMac());
      // A MAC that is not base64url, or of another length.
      for (const mac of ['!!', 'AAAA', 42]) {
        const header = b64({ ...headerOf(token), [macParameter]: mac });
        await refusedWith(
          `${header}.${parts(token)[1]}.${randomBytes(64).toString('base64url')}`,
          'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
          ec.publicKey,
          withMac(),
        );
      }
    });

    it("binds the typ: a refresh token's MAC never passes as an access token's", async () => {
      const refresh = signJwt({ alg: 'ES256', kid: 'k1', typ: 'berth-refresh+jwt' }, good(), ec.privateKey, macKey);
      assert.deepEqual((await verifyJwt(badSignature(refresh), key(ec.publicKey), withMac({ typ: 'berth-refresh+jwt' }))).claims, good());
      const relabelled = b64({ ...headerOf(refresh), typ: 'at+jwt' });
      await refusedWith(
        `${relabelled}.${parts(refresh)[1]}.${randomBytes(64).toString('base64url')}`,
        'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
        ec.publicKey,
        withMac(),
      );
    });
  });
});
