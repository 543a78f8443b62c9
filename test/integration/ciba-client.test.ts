import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import type { Agent } from 'undici';
import { buildPaymentInitiationDetail } from '../../src/payments/authorization.js';
import { createBankAgent } from '../../src/ciba/bank-agent.js';
import { JWKS_MAX_AGE_MS } from '../../src/ciba/id-token.js';
import { createCibaClient } from '../../src/ciba/index.js';
import {
  BackchannelError,
  type BackchannelRequestInput,
  type CibaClient,
  type TokenOutcome,
} from '../../src/ciba/types.js';
import type { Clock } from '../../src/clock.js';
import type { Config } from '../../src/config.js';
import { ensureDevCertificates, type DevCertificates } from '../../src/sandbox/certs.js';
import { waitFor } from '../support/api.js';
import {
  replies,
  startScriptedOp,
  type IdTokenOptions,
  type RecordedRequest,
  type Reply,
  type ScriptedOp,
} from '../support/scripted-op.js';

let certs: DevCertificates;
let op: ScriptedOp;
const agents: Agent[] = [];

beforeAll(async () => {
  certs = ensureDevCertificates(mkdtempSync(join(tmpdir(), 'ciba-client-certs-')));
  op = await startScriptedOp({ certs });
});
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
  op.reset();
});
afterAll(() => op.close());

const detail = buildPaymentInitiationDetail({
  amount: 1290,
  currency: 'eur',
  creditorName: 'Demo Tea Shop',
  creditorIban: 'DE89370400440532013000',
  remittanceInformation: 'Order 42',
});
const input: BackchannelRequestInput = {
  loginHint: 'alice',
  bindingMessage: 'K7P2-QX',
  requestedExpiry: 120,
  authorizationDetails: [detail],
};

function makeClient(bank: Partial<Config['bank']> = {}, ciba: Partial<Config['ciba']> = {}, clock?: Clock): CibaClient {
  const config = op.configFor(bank, ciba);
  op.setClientAuth(config.bank.clientAuthMethod);
  const agent = createBankAgent(config.bank);
  agents.push(agent);
  return createCibaClient(clock ? { config, agent, clock } : { config, agent });
}

/** Starts a request and returns its auth_req_id with the expectation for the token step. */
async function startGrant(client: CibaClient) {
  const started = await client.startBackchannelAuthentication(input);
  return { started, expect: { authReqId: started.authReqId, authorizationDetails: [detail] } };
}

async function approveAndRequest(client: CibaClient, idToken?: IdTokenOptions, details?: unknown) {
  const { expect } = await startGrant(client);
  op.approve(expect.authReqId, { ...(idToken ? { idToken } : {}), authorizationDetails: details });
  return client.requestToken(expect);
}

async function backchannelError(client: CibaClient): Promise<BackchannelError> {
  const error: unknown = await client.startBackchannelAuthentication(input).catch((e: unknown) => e);
  if (!(error instanceof BackchannelError)) throw new Error(`expected a BackchannelError, got ${String(error)}`);
  return error;
}

describe('discovery', () => {
  test('when the bank advertises mTLS aliases, then token and backchannel requests use them', async () => {
    const client = makeClient();
    await client.ensureDiscovered();
    expect(client.isReady()).toBe(true);
    const { expect: e } = await startGrant(client);
    await client.requestToken(e);
    expect(op.requestsTo('backchannel')[0]!.path).toBe('/mtls/bc-authorize');
    expect(op.requestsTo('token')[0]!.path).toBe('/mtls/token');
    expect(op.requestsTo('discovery')).toHaveLength(1);
  });

  test('when discovery fails once, then it is not cached and the next call succeeds', async () => {
    op.script('discovery', { status: 503 }, { status: 503 });
    const client = makeClient();
    await expect(client.ensureDiscovered()).rejects.toThrow();
    expect(client.isReady()).toBe(false);
    expect(await client.requestToken({ authReqId: 'x', authorizationDetails: [] })).toEqual({
      kind: 'retry',
      reason: 'discovery_unavailable',
    });
    await client.ensureDiscovered();
    expect(client.isReady()).toBe(true);
  });

  test('when the issuer differs even by a trailing slash, then discovery is refused', async () => {
    op.metadata.issuer = `${op.issuer}/`;
    await expect(makeClient().ensureDiscovered()).rejects.toThrow(/issuer/);
  });

  test('when the bank does not advertise our delivery mode, then discovery is refused', async () => {
    op.metadata.backchannel_token_delivery_modes_supported = ['push'];
    await expect(makeClient().ensureDiscovered()).rejects.toThrow(/poll/);
  });

  test('when the bank does not advertise the CIBA grant, then backchannel answers bank_unavailable', async () => {
    op.metadata.grant_types_supported = ['authorization_code'];
    expect((await backchannelError(makeClient())).code).toBe('bank_unavailable');
  });

  test('when the client presents a certificate of an unknown CA, then the bank refuses it', async () => {
    const client = makeClient({ clientCertFile: certs.otherClientCert, clientKeyFile: certs.otherClientKey });
    expect((await backchannelError(client)).code).toBe('bank_client_error');
    expect(op.requestsTo('backchannel')[0]!.clientCert?.subject).toBe('CN=intruder');
  });
});

describe('client authentication and the backchannel request', () => {
  test('when tls_client_auth with PEM, then the body carries every parameter and client_id', async () => {
    const { started } = await startGrant(makeClient());
    expect(started).toEqual({ authReqId: op.lastGrant().authReqId, expiresIn: 120, interval: 5 });
    const req = op.requestsTo('backchannel')[0]!;
    expect(req.clientCert).toMatchObject({ subject: 'CN=client', authorized: true });
    expect(req.form).toMatchObject({
      client_id: op.clientId,
      scope: 'openid',
      login_hint: 'alice',
      binding_message: 'K7P2-QX',
      requested_expiry: '120',
    });
    expect(JSON.parse(req.form.authorization_details!)).toEqual([detail]);
    expect(req.form.client_notification_token).toBeUndefined();
  });

  test('when tls_client_auth with PKCS#12, then the same certificate is presented', async () => {
    const client = makeClient({
      clientCertFile: undefined,
      clientKeyFile: undefined,
      clientPfxFile: certs.clientPfx,
      clientPfxPassphrase: certs.clientPfxPassphrase,
    });
    await startGrant(client);
    expect(op.requestsTo('backchannel')[0]!.clientCert).toMatchObject({ subject: 'CN=client', authorized: true });
  });

  test.each([
    ['PS256', () => certs.signingKeyPs256],
    ['ES256', () => certs.signingKeyEs256],
  ] as const)(
    'when private_key_jwt with %s, then a fresh short-lived assertion is sent each time',
    async (alg, file) => {
      const client = makeClient({ clientAuthMethod: 'private_key_jwt', signingAlg: alg, signingKeyFile: file() });
      const { expect: e } = await startGrant(client);
      await client.requestToken(e);
      const [bc, token] = [op.requestsTo('backchannel')[0]!, op.requestsTo('token')[0]!];
      for (const req of [bc, token]) {
        const { header, payload } = req.clientAssertion!;
        expect(header.alg).toBe(alg);
        expect(payload).toMatchObject({ iss: op.clientId, sub: op.clientId, aud: op.issuer });
        expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
      }
      expect(bc.clientAssertion!.payload.jti).not.toBe(token.clientAssertion!.payload.jti);
      expect(await client.requestToken(e)).toEqual({ kind: 'pending' });
    },
  );

  test('when client_secret_basic, then the form-encoded id and secret go in Basic auth', async () => {
    const client = makeClient({ clientAuthMethod: 'client_secret_basic' });
    const { expect: e } = await startGrant(client);
    expect(await client.requestToken(e)).toEqual({ kind: 'pending' });
    const header = op.requestsTo('token')[0]!.headers.authorization!;
    expect(Buffer.from(header.slice(6), 'base64').toString()).toBe('shop-client:dev-secret+with+spaces%26symbols');
  });

  test('when client_secret_basic with the wrong secret, then bank_client_error', async () => {
    const client = makeClient({ clientAuthMethod: 'client_secret_basic', clientSecret: 'wrong' });
    expect((await backchannelError(client)).code).toBe('bank_client_error');
  });

  test('when signed requests are on, then one JWT carries the parameters with iss, aud, exp, iat, nbf, jti', async () => {
    const client = makeClient({}, { signedRequest: true, deliveryMode: 'ping' });
    await client.startBackchannelAuthentication({ ...input, clientNotificationToken: 'n'.repeat(32) });
    const req = op.requestsTo('backchannel')[0]!;
    expect(Object.keys(req.form).sort()).toEqual(['client_id', 'request']);
    expect(decodeProtectedHeader(req.form.request!).alg).toBe('PS256');
    const claims = req.requestObject!.payload;
    expect(claims).toMatchObject({
      iss: op.clientId,
      aud: op.issuer,
      login_hint: 'alice',
      binding_message: 'K7P2-QX',
      requested_expiry: 120,
      scope: 'openid',
      client_notification_token: 'n'.repeat(32),
      authorization_details: [detail],
    });
    expect(typeof claims.jti).toBe('string');
    expect(claims.iat).toBe(claims.nbf);
    expect(claims.exp! - claims.nbf!).toBeLessThanOrEqual(3600);
  });

  test('when the bank does not advertise our request signing alg, then no request is sent', async () => {
    op.metadata.backchannel_authentication_request_signing_alg_values_supported = ['ES256'];
    const client = makeClient({}, { signedRequest: true });
    expect((await backchannelError(client)).code).toBe('bank_unavailable');
    expect(op.requestsTo('backchannel')).toHaveLength(0);
  });
});

describe('backchannel answers', () => {
  test.each([
    ['unknown_user_id', 'unknown_bank_user'],
    ['invalid_request', 'bank_request_rejected'],
    ['invalid_binding_message', 'bank_request_rejected'],
    ['expired_login_hint_token', 'bank_request_rejected'],
    ['access_denied', 'bank_request_rejected'],
    ['invalid_scope', 'bank_request_rejected'],
    ['missing_user_code', 'bank_request_rejected'],
    ['invalid_user_code', 'bank_request_rejected'],
    ['invalid_client', 'bank_client_error'],
    ['unauthorized_client', 'bank_client_error'],
  ])('when the bank answers %s, then %s with the bank error kept', async (error, code) => {
    op.script('backchannel', {
      status: error === 'invalid_client' ? 401 : 400,
      json: { error, error_description: 'd' },
    });
    const err = await backchannelError(makeClient());
    expect(err.code).toBe(code);
    expect(err.bankError).toEqual({ error, errorDescription: 'd' });
  });

  test.each([
    ['503 with Retry-After', { status: 503, headers: { 'retry-after': '7' } }, 7],
    ['429 with Retry-After', { status: 429, headers: { 'retry-after': '2' } }, 2],
    ['500', { status: 500 }, undefined],
    ['a dropped connection', { status: 200, hangUp: true }, undefined],
  ])('when the bank answers %s, then bank_unavailable', async (_name, reply, retryAfter) => {
    op.script('backchannel', reply);
    const err = await backchannelError(makeClient());
    expect(err.code).toBe('bank_unavailable');
    expect(err.retryAfterSeconds).toBe(retryAfter);
  });

  // undici checks headers timeouts on a ~1 s tick, so a slow answer is 3 s against a 200 ms timeout
  test('when the bank does not answer in time, then bank_unavailable', async () => {
    op.script('backchannel', { status: 200, json: { auth_req_id: 'a', expires_in: 1 }, delayMs: 3000 });
    expect((await backchannelError(makeClient({ timeoutMs: 200 }))).code).toBe('bank_unavailable');
  });

  test.each([
    ['malformed JSON', replies.text(200, '{"auth_req_id":', 'application/json')],
    ['no auth_req_id', replies.json(200, { expires_in: 120 })],
    ['an empty auth_req_id', replies.json(200, { auth_req_id: '', expires_in: 120 })],
    ['no expires_in', replies.json(200, { auth_req_id: 'a' })],
    ['a string expires_in', replies.json(200, { auth_req_id: 'a', expires_in: '120' })],
    ['a zero interval', replies.json(200, { auth_req_id: 'a', expires_in: 120, interval: 0 })],
    ['an interval of half a second', replies.json(200, { auth_req_id: 'a', expires_in: 120, interval: 0.5 })],
    ['an interval as a string', replies.json(200, { auth_req_id: 'a', expires_in: 120, interval: '5' })],
    ['a fractional expires_in', replies.json(200, { auth_req_id: 'a', expires_in: 119.5 })],
    ['an error without JSON', replies.text(400, 'bad')],
  ])('when the answer has %s, then bank_invalid_response', async (_name, reply) => {
    op.script('backchannel', reply);
    expect((await backchannelError(makeClient())).code).toBe('bank_invalid_response');
  });

  test('when the bank grants longer than requested, then the expiry is capped at the requested expiry', async () => {
    op.script('backchannel', replies.json(200, { auth_req_id: 'a', expires_in: 3600, interval: 2 }));
    expect(await makeClient().startBackchannelAuthentication(input)).toEqual({
      authReqId: 'a',
      expiresIn: 120,
      interval: 2,
    });
  });

  test('when the bank asks for interval 31, then the client reports it unchanged', async () => {
    op.script('backchannel', replies.json(200, { auth_req_id: 'a', expires_in: 120, interval: 31 }));
    expect(await makeClient().startBackchannelAuthentication(input)).toEqual({
      authReqId: 'a',
      expiresIn: 120,
      interval: 31,
    });
  });
});

describe('token request', () => {
  test('when the user approves after two pending polls, then authorized with the subject', async () => {
    const client = makeClient();
    const { expect: e } = await startGrant(client);
    expect(await client.requestToken(e)).toEqual({ kind: 'pending' });
    expect(await client.requestToken(e)).toEqual({ kind: 'pending' });
    op.approve(e.authReqId);
    const outcome = await client.requestToken(e);
    expect(outcome).toMatchObject({ kind: 'authorized', accessTokenExpiresIn: 300, subject: 'user-alice' });
    const polls = op.requestsTo('token');
    expect(polls).toHaveLength(3);
    for (const poll of polls) {
      expect(poll.form).toEqual({
        grant_type: 'urn:openid:params:grant-type:ciba',
        client_id: op.clientId,
        auth_req_id: e.authReqId,
      });
    }
  });

  test.each<[string, TokenOutcome]>([
    ['authorization_pending', { kind: 'pending' }],
    ['slow_down', { kind: 'slow_down' }],
    ['expired_token', { kind: 'failed', failureCode: 'expired', error: 'expired_token' }],
    ['access_denied', { kind: 'failed', failureCode: 'access_denied', error: 'access_denied' }],
    ['invalid_grant', { kind: 'failed', failureCode: 'authorization_error', error: 'invalid_grant' }],
    ['invalid_request', { kind: 'failed', failureCode: 'authorization_error', error: 'invalid_request' }],
    ['invalid_client', { kind: 'client_rejected', error: 'invalid_client' }],
    ['unauthorized_client', { kind: 'client_rejected', error: 'unauthorized_client' }],
    ['unsupported_grant_type', { kind: 'failed', failureCode: 'authorization_error', error: 'unsupported_grant_type' }],
    ['something_new', { kind: 'failed', failureCode: 'authorization_error', error: 'something_new' }],
  ])('when the bank answers %s, then the mapped outcome', async (error, outcome) => {
    const client = makeClient();
    const { expect: e } = await startGrant(client);
    op.script('token', replies.tokenError(error, error === 'invalid_client' ? 401 : 400));
    expect(await client.requestToken(e)).toEqual(outcome);
  });

  test('when polls share one connection, then they are pipelined and each gets its own answer', async () => {
    const client = makeClient({ maxConnections: 1, pipelining: 8 });
    const grants = [await startGrant(client), await startGrant(client), await startGrant(client)];
    const errors = ['authorization_pending', 'slow_down', 'access_denied'];
    const answer = (req: RecordedRequest) =>
      replies.tokenError(errors[grants.findIndex((g) => g.expect.authReqId === req.form.auth_req_id)] ?? 'other');
    // The bank holds its first answer until all three polls have arrived: only pipelined polls can.
    let arrivedBeforeFirstAnswer = 0;
    const holdFirst = async (req: RecordedRequest) => {
      arrivedBeforeFirstAnswer = await waitFor(() => op.requestsTo('token').length === 3 && 3, 2000).catch(
        () => op.requestsTo('token').length,
      );
      return answer(req);
    };
    op.script('token', holdFirst, answer, answer);
    const outcomes = await Promise.all(grants.map((g) => client.requestToken(g.expect)));
    expect(arrivedBeforeFirstAnswer).toBe(3);
    expect(outcomes).toEqual([
      { kind: 'pending' },
      { kind: 'slow_down' },
      { kind: 'failed', failureCode: 'access_denied', error: 'access_denied' },
    ]);
  });

  test('when a connection drops with polls pipelined behind an answer, then they are not sent again at once', async () => {
    const client = makeClient({ maxConnections: 1, pipelining: 8 });
    const grants = [await startGrant(client), await startGrant(client), await startGrant(client)];
    // The bank reads all three polls, answers the first, then the connection drops: the other two
    // may have been read (their answers lost), so sending them again now would be an early poll.
    const answerFirstThenDrop = async (): Promise<Reply> => {
      await waitFor(() => op.requestsTo('token').length >= 3, 2000);
      return { ...replies.tokenError('authorization_pending'), closeAfter: true };
    };
    const neverAnswered = () => new Promise<Reply>(() => undefined);
    op.script('token', answerFirstThenDrop, neverAnswered, neverAnswered);
    const outcomes = await Promise.all(grants.map((g) => client.requestToken(g.expect)));
    // Every poll reached the bank exactly once: when our caller polls again, it is at its interval.
    const arrivals = grants.map((g) =>
      op
        .requestsTo('token')
        .filter((r) => r.form.auth_req_id === g.expect.authReqId)
        .map((r) => r.at),
    );
    expect(arrivals.map((at) => at.length)).toEqual([1, 1, 1]);
    // the two unanswered polls are transport errors: nothing was decided, polled again later
    expect(outcomes[0]).toEqual({ kind: 'pending' });
    for (const outcome of outcomes.slice(1)) {
      expect(outcome.kind === 'retry' && outcome.reason.startsWith('network')).toBe(true);
    }
  });

  test('when the grant is denied or expired at the bank, then access_denied or expired', async () => {
    const client = makeClient();
    const a = await startGrant(client);
    const b = await startGrant(client);
    op.deny(a.expect.authReqId);
    op.expire(b.expect.authReqId);
    expect(await client.requestToken(a.expect)).toMatchObject({ kind: 'failed', failureCode: 'access_denied' });
    expect(await client.requestToken(b.expect)).toMatchObject({ kind: 'failed', failureCode: 'expired' });
  });

  test.each<[string, Reply, string, number | 'date' | undefined]>([
    ['429 with Retry-After seconds', { status: 429, headers: { 'retry-after': '3' } }, 'http_429', 3000],
    ['503 with an HTTP-date', { status: 503, headers: { 'retry-after': 'DATE' } }, 'http_503', 'date'],
    ['500 without Retry-After', { status: 500, text: 'oops' }, 'http_500', undefined],
    ['502 with an unreadable Retry-After', { status: 502, headers: { 'retry-after': 'soon' } }, 'http_502', undefined],
    ['404 without an OAuth error', { status: 404, text: 'no' }, 'http_404', undefined],
  ])('when the bank answers %s, then retry', async (_name, reply, reason, retryAfter) => {
    const client = makeClient();
    const { expect: e } = await startGrant(client);
    const date = new Date(Date.now() + 10_000).toUTCString();
    const headers = Object.fromEntries(
      Object.entries(reply.headers ?? {}).map(([k, v]) => [k, v.replace('DATE', date)]),
    );
    op.script('token', { ...reply, headers });
    const outcome = await client.requestToken(e);
    expect(outcome).toMatchObject({ kind: 'retry', reason });
    if (outcome.kind !== 'retry') throw new Error('unreachable');
    if (retryAfter === 'date') expect(outcome.retryAfterMs).toBeGreaterThan(7_000);
    else expect(outcome.retryAfterMs).toBe(retryAfter);
  });

  test('when the connection drops or the bank is too slow, then retry', async () => {
    const client = makeClient({ timeoutMs: 200 });
    const { expect: e } = await startGrant(client);
    op.script('token', { status: 200, hangUp: true }, { status: 400, json: { error: 'slow_down' }, delayMs: 3000 });
    for (let i = 0; i < 2; i++) {
      const outcome = await client.requestToken(e);
      expect(outcome.kind === 'retry' && outcome.reason.startsWith('network')).toBe(true);
    }
  });

  test.each([
    ['non-JSON', () => replies.text(200, 'ok')],
    ['JSON under a wrong content type', () => replies.text(200, '{"access_token":"a"}', 'text/html')],
    ['malformed JSON', () => replies.text(200, '{"access_token', 'application/json')],
    ['no id_token', () => op.tokenSuccess({ body: { id_token: undefined } })],
    ['no access_token', () => op.tokenSuccess({ body: { access_token: undefined } })],
    ['a DPoP token type', () => op.tokenSuccess({ body: { token_type: 'DPoP' } })],
    ['a negative expires_in', () => op.tokenSuccess({ body: { expires_in: -1 } })],
  ])('when a 200 has %s, then failed/authorization_error (the grant is spent)', async (_name, reply) => {
    const client = makeClient();
    const { expect: e } = await startGrant(client);
    op.script('token', reply());
    expect(await client.requestToken(e)).toMatchObject({ kind: 'failed', failureCode: 'authorization_error' });
  });

  test('when token_type is lower-case bearer and optional fields are missing, then authorized', async () => {
    const client = makeClient();
    const { expect: e } = await startGrant(client);
    op.script('token', op.tokenSuccess({ body: { token_type: 'bearer', expires_in: undefined, scope: undefined } }));
    const outcome = await client.requestToken(e);
    expect(outcome).toMatchObject({ kind: 'authorized', subject: 'user-alice' });
    expect(outcome).not.toHaveProperty('accessTokenExpiresIn');
  });
});

describe('ID token validation', () => {
  const now = () => Math.floor(Date.now() / 1000);
  test.each<[string, () => IdTokenOptions]>([
    ['signed with another alg than configured', () => ({ alg: 'ES256' })],
    ['alg none', () => ({ alg: 'none' })],
    ['a broken signature', () => ({ tamper: true })],
    ['a kid not in the JWKS', () => ({ key: 'next' })],
    ['a wrong iss', () => ({ claims: { iss: 'https://evil.example' } })],
    ['a wrong aud', () => ({ claims: { aud: 'other-client' } })],
    ['an extra aud without azp', () => ({ claims: { aud: ['shop-client', 'other'] } })],
    ['an extra aud with a foreign azp', () => ({ claims: { aud: ['shop-client', 'other'], azp: 'other' } })],
    ['a foreign azp', () => ({ claims: { azp: 'other' } })],
    ['an exp in the past', () => ({ claims: { exp: now() - 60 } })],
    ['an iat six minutes old', () => ({ claims: { iat: now() - 360, exp: now() + 300 } })],
    ['an iat in the future', () => ({ claims: { iat: now() + 120 } })],
    ['no iss', () => ({ claims: { iss: undefined } })],
    ['no aud', () => ({ claims: { aud: undefined } })],
    ['no exp', () => ({ claims: { exp: undefined } })],
    ['no iat', () => ({ claims: { iat: undefined } })],
    ['no sub', () => ({ claims: { sub: undefined } })],
    ['another auth_req_id claim', () => ({ claims: { 'urn:openid:params:jwt:claim:auth_req_id': 'other' } })],
  ])('when the ID token has %s, then failed/invalid_id_token and no token is returned', async (_name, options) => {
    const outcome = await approveAndRequest(makeClient(), options());
    expect(outcome).toMatchObject({ kind: 'failed', failureCode: 'invalid_id_token' });
    expect(outcome).not.toHaveProperty('accessToken');
  });

  test.each<[string, () => IdTokenOptions]>([
    ['an extra aud with azp = client id', () => ({ claims: { aud: ['shop-client', 'other'], azp: 'shop-client' } })],
    ['no auth_req_id claim', () => ({ claims: { 'urn:openid:params:jwt:claim:auth_req_id': undefined } })],
    ['an iat four minutes old', () => ({ claims: { iat: now() - 240 } })],
    ['an iat 20 s ahead (within skew)', () => ({ claims: { iat: now() + 20 } })],
    ['an exp 20 s past (within skew)', () => ({ claims: { exp: now() - 20 } })],
  ])('when the ID token has %s, then authorized', async (_name, options) => {
    expect(await approveAndRequest(makeClient(), options())).toMatchObject({ kind: 'authorized' });
  });

  test('when the ES256 alg is configured and used, then authorized', async () => {
    const client = makeClient({ idTokenAlg: 'ES256' });
    expect(await approveAndRequest(client, { alg: 'ES256' })).toMatchObject({ kind: 'authorized' });
    expect(await approveAndRequest(client, { alg: 'PS256' })).toMatchObject({ failureCode: 'invalid_id_token' });
  });

  test('when the bank rotates keys, then an unknown kid refetches the JWKS at most once per 10 s', async () => {
    let t = Date.now();
    const client = makeClient({}, {}, { now: () => t });
    await client.ensureDiscovered();
    expect(op.requestsTo('jwks')).toHaveLength(1);
    // the start-up load does not count: the first unknown kid refetches at once (the key is not there yet)
    expect(await approveAndRequest(client, { key: 'next' })).toMatchObject({ failureCode: 'invalid_id_token' });
    expect(op.requestsTo('jwks')).toHaveLength(2);
    // within 10 s of that refetch an unknown kid fails without asking the bank again
    op.rotateKeys();
    expect(await approveAndRequest(client, { key: 'next' })).toMatchObject({ failureCode: 'invalid_id_token' });
    expect(op.requestsTo('jwks')).toHaveLength(2);
    t += 11_000;
    expect(await approveAndRequest(client, { key: 'next' })).toMatchObject({ kind: 'authorized' });
    expect(op.requestsTo('jwks')).toHaveLength(3);
  });

  test('when the keys are older than their maximum age, then they are fetched again before use', async () => {
    let t = Date.now();
    const client = makeClient({}, {}, { now: () => t });
    await client.ensureDiscovered();
    expect(await approveAndRequest(client)).toMatchObject({ kind: 'authorized' });
    expect(op.requestsTo('jwks')).toHaveLength(1);
    t += JWKS_MAX_AGE_MS + 1000;
    const atT = { claims: { iat: Math.floor(t / 1000), exp: Math.floor(t / 1000) + 300 } };
    expect(await approveAndRequest(client, atT)).toMatchObject({ kind: 'authorized' });
    expect(op.requestsTo('jwks')).toHaveLength(2);
  });

  test('when the keys cannot be fetched while a token is held, then unverified (not invalid_id_token), and the kept token validates later without a second token request', async () => {
    let t = Date.now();
    const client = makeClient({}, {}, { now: () => t });
    await client.ensureDiscovered();
    t += JWKS_MAX_AGE_MS + 1000;
    op.script('jwks', { status: 503 });
    const { expect: e } = await startGrant(client);
    op.approve(e.authReqId, {
      idToken: { claims: { iat: Math.floor(t / 1000), exp: Math.floor(t / 1000) + 300 } },
      authorizationDetails: [detail],
    });
    const outcome = await client.requestToken(e);
    expect(outcome).toMatchObject({ kind: 'unverified' });
    if (outcome.kind !== 'unverified') throw new Error('unreachable');
    op.script('jwks', { status: 200, hangUp: true });
    expect(await client.validateReceivedToken(outcome.response, e)).toMatchObject({ kind: 'unverified' });
    t += 10 * 60_000; // the ID token is judged at receipt, so a late check gives the same answer
    expect(await client.validateReceivedToken(outcome.response, e)).toMatchObject({ kind: 'authorized' });
    expect(op.requestsTo('token').filter((r) => r.form.auth_req_id === e.authReqId)).toHaveLength(1);
  });

  test('when an unknown kid arrives and the 10 s are over but the key is still unknown, then one refetch and failed', async () => {
    let t = Date.now();
    const client = makeClient({}, {}, { now: () => t });
    await client.ensureDiscovered();
    t += 11_000;
    expect(await approveAndRequest(client, { key: 'next' })).toMatchObject({ failureCode: 'invalid_id_token' });
    expect(await approveAndRequest(client, { key: 'next' })).toMatchObject({ failureCode: 'invalid_id_token' });
    expect(op.requestsTo('jwks')).toHaveLength(2);
  });
});

describe('authorization_details', () => {
  const returned = (patch: Record<string, unknown>) => [{ ...detail, ...patch }];
  test.each([
    ['another amount', returned({ instructedAmount: { currency: 'EUR', amount: '129.00' } })],
    ['another currency', returned({ instructedAmount: { currency: 'USD', amount: '12.90' } })],
    ['another IBAN', returned({ creditorAccount: { iban: 'GB33BUKB20201555555555' } })],
    ['another creditor name', returned({ creditorName: 'Evil Shop' })],
    ['a second payment', [detail, detail]],
    ['no payment', []],
    ['not an array', { type: 'payment_initiation' }],
  ])('when the bank returns %s, then failed/authorization_mismatch', async (_name, details) => {
    const outcome = await approveAndRequest(makeClient(), undefined, details);
    expect(outcome).toMatchObject({ kind: 'failed', failureCode: 'authorization_mismatch' });
  });

  test('when the bank returns the same payment written differently, then authorized', async () => {
    const same = returned({
      instructedAmount: { currency: 'eur', amount: '12.9' },
      creditorAccount: { iban: 'DE89 3704 0044 0532 0130 00' },
    });
    expect(await approveAndRequest(makeClient(), undefined, same)).toMatchObject({ kind: 'authorized' });
  });

  test('when the bank returns no authorization_details, then failed/authorization_mismatch (RFC 9396 §7)', async () => {
    expect(await approveAndRequest(makeClient(), undefined, null)).toMatchObject({
      kind: 'failed',
      failureCode: 'authorization_mismatch',
    });
  });

  test('when the bank returns none and CIBA_REQUIRE_GRANTED_DETAILS=false, then authorized', async () => {
    const client = makeClient({}, { requireGrantedDetails: false });
    expect(await approveAndRequest(client, undefined, null)).toMatchObject({ kind: 'authorized' });
  });
});
