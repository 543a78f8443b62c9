import { decodeProtectedHeader } from 'jose';
import type { RecordedRequest } from '../support/scripted-op.js';
import { startScriptedOp, type ClientAuthMethod, type ScriptedOp } from '../support/scripted-op.js';
import {
  createTestClock,
  startServiceAgainst,
  type ServiceAgainstOp,
  type TestClock,
} from '../support/service-against-op.js';
import { testCertificates } from '../support/system.js';

/**
 * Conformance (issue 4), client authentication and signed requests through the whole service:
 * checkout → backchannel → token → payment, for each method the configuration offers.
 * The clock is never moved in this file: jose at the OP checks exp/nbf against real time.
 */

const certs = testCertificates();
let op: ScriptedOp;
const clock: TestClock = createTestClock();
let svc: ServiceAgainstOp | undefined;

beforeAll(async () => {
  op = await startScriptedOp({ certs, interval: 1, clock });
});
afterEach(async () => {
  if (svc) {
    await svc.cancelOpen();
    await svc.close();
    svc = undefined;
  }
  op.reset();
});
afterAll(() => op.close());

/** A whole payment with `method` at the OP and `env` at the service; returns the OP's view of it. */
async function payWith(method: ClientAuthMethod, env: Record<string, string>) {
  op.setClientAuth(method);
  svc = await startServiceAgainst(op, env, { clock });
  const p = await svc.start();
  op.approve(p.authReqId);
  // real time here (1 s interval): the OP checks request objects and assertions against the real clock
  expect(await svc.settle(p)).toMatchObject({ status: 'succeeded', failure_code: null });
  const polls = p.polls();
  expect(polls).toHaveLength(1);
  const calls = p.paymentCalls();
  expect(calls).toHaveLength(1);
  // the payment API is mTLS whatever the token endpoint's client authentication is
  expect(calls[0]!.clientCert).toMatchObject({ subject: 'CN=client', authorized: true });
  return { p, backchannel: p.backchannel, token: polls[0]! };
}

function expectCertificateAuth(...requests: RecordedRequest[]) {
  for (const r of requests) {
    expect(r.viaMtlsAlias).toBe(true);
    expect(r.clientCert).toMatchObject({ subject: 'CN=client', authorized: true });
    expect(r.form.client_id).toBe(op.clientId);
    expect(r.form.client_assertion).toBeUndefined();
    expect(r.headers.authorization).toBeUndefined();
  }
}

test('tls_client_auth with a PEM certificate and key', async () => {
  const { backchannel, token } = await payWith('tls_client_auth', {});
  expectCertificateAuth(backchannel, token);
});

test('tls_client_auth with a PKCS#12 file (BANK_CLIENT_PFX)', async () => {
  const { backchannel, token } = await payWith('tls_client_auth', {
    BANK_CLIENT_CERT: '',
    BANK_CLIENT_KEY: '',
    BANK_CLIENT_PFX: certs.clientPfx,
    BANK_CLIENT_PFX_PASSPHRASE: certs.clientPfxPassphrase,
  });
  expectCertificateAuth(backchannel, token);
});

test.each([
  ['PS256', certs.signingKeyPs256],
  ['ES256', certs.signingKeyEs256],
] as const)('private_key_jwt %s: a fresh, short-lived assertion on every request', async (alg, key) => {
  const { backchannel, token } = await payWith('private_key_jwt', {
    BANK_CLIENT_AUTH_METHOD: 'private_key_jwt',
    BANK_SIGNING_KEY: key,
    BANK_SIGNING_ALG: alg,
  });
  const jtis = new Set<unknown>();
  for (const r of [backchannel, token]) {
    expect(r.form.client_assertion_type).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    const assertion = r.clientAssertion!; // verified by the OP against the registered key
    expect(assertion.header).toMatchObject({ alg, typ: 'JWT' });
    expect(assertion.header.kid).toEqual(expect.any(String));
    expect(assertion.payload).toMatchObject({ iss: op.clientId, sub: op.clientId, aud: op.issuer });
    expect(assertion.payload.exp! - assertion.payload.iat!).toBeLessThanOrEqual(60);
    jtis.add(assertion.payload.jti);
  }
  expect(jtis.size).toBe(2);
});

test('client_secret_basic (development only)', async () => {
  const { backchannel, token } = await payWith('client_secret_basic', {
    BANK_CLIENT_AUTH_METHOD: 'client_secret_basic',
    BANK_CLIENT_SECRET: op.clientSecret,
  });
  for (const r of [backchannel, token]) {
    expect(r.headers.authorization).toMatch(/^Basic /);
    expect(r.form.client_secret).toBeUndefined();
    expect(r.form.client_assertion).toBeUndefined();
  }
});

test.each([
  ['PS256', certs.signingKeyPs256],
  ['ES256', certs.signingKeyEs256],
] as const)(
  'CIBA_SIGNED_REQUEST=true (%s): a request object with iss, aud, exp, iat, nbf, jti, lifetime ≤ 60 min',
  async (alg, key) => {
    const { p, backchannel } = await payWith('tls_client_auth', {
      CIBA_SIGNED_REQUEST: 'true',
      BANK_SIGNING_KEY: key,
      BANK_SIGNING_ALG: alg,
    });
    expect(Object.keys(backchannel.form).sort()).toEqual(['client_id', 'request']);
    expect(decodeProtectedHeader(backchannel.form.request!).alg).toBe(alg);
    const claims = backchannel.requestObject!.payload; // verified by the OP
    expect(claims).toMatchObject({
      iss: op.clientId,
      aud: op.issuer,
      scope: 'openid profile',
      login_hint: 'alice',
      binding_message: p.bindingMessage,
      requested_expiry: 30,
    });
    expect(claims.authorization_details).toEqual([
      expect.objectContaining({ type: 'payment_initiation', instructedAmount: { currency: 'EUR', amount: '12.90' } }),
    ]);
    for (const claim of ['exp', 'iat', 'nbf', 'jti'] as const) expect(claims[claim]).toBeDefined();
    expect(claims.exp! - claims.nbf!).toBeGreaterThan(0);
    expect(claims.exp! - claims.nbf!).toBeLessThanOrEqual(3600);
    expect(Math.abs(claims.iat! - Math.floor(clock.now() / 1000))).toBeLessThan(120);
  },
);
