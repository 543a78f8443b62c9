import { createHash, createPrivateKey, createPublicKey, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import type { JWK } from 'jose';
import type { JSONWebKeySet } from 'jose';
import { request, type Agent } from 'undici';
import { ensureDevCertificates } from '../../src/sandbox/certs.js';
import { Redis } from 'ioredis';
import { createSandboxKeys } from '../../src/sandbox/keys.js';
import { waitFor } from '../support/api.js';
import { deleteKeysWithPrefix } from '../support/redis.js';
import { mtlsAgent } from '../support/system.js';
import type { DevCertificates } from '../../src/sandbox/certs.js';
import { startSandboxBank } from '../../src/sandbox/bank.js';
import type { SandboxBank } from '../../src/sandbox/bank.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const CLIENT_ID = 'cibaConformance';
const PING_CLIENT_ID = 'pingShop';
const JWT_CLIENT_ID = 'jwtShop';
const SECRET_CLIENT_ID = 'devShop';
const DEV_SECRET = randomBytes(24).toString('base64url');

const detail = {
  type: 'payment_initiation',
  instructedAmount: { currency: 'EUR', amount: '12.90' },
  creditorName: 'Demo Tea Shop',
  creditorAccount: { iban: 'DE89370400440532013000' },
  remittanceInformationUnstructured: 'Order pay_test',
};

interface Json {
  [key: string]: unknown;
}

let dir: string;
let certs: DevCertificates;
let prefix: string;
let bank: SandboxBank;
let client: Agent;
let intruder: Agent;
let anonymous: Agent;
let redis: Redis;
let notifyServer: Server;
let notifyUrl: string;
const pings: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
const logLines: string[] = [];
let discovery: Json;
/** The OP's published JWKS (fetched from jwks_uri), for verifying its tokens. */
let opKeys: ReturnType<typeof createLocalJWKSet>;

async function post(
  url: string,
  form: Record<string, string>,
  dispatcher: Agent = client,
): Promise<{ status: number; body: Json }> {
  const res = await request(url, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Json };
}

function endpoint(name: string): string {
  const aliases = discovery.mtls_endpoint_aliases as Record<string, string>;
  const url = aliases[name];
  if (url === undefined) throw new Error(`no ${name}`);
  return url;
}

async function startRequest(
  extra: Record<string, string> = {},
  dispatcher: Agent = client,
): Promise<{ status: number; body: Json }> {
  return post(
    endpoint('backchannel_authentication_endpoint'),
    {
      client_id: CLIENT_ID,
      scope: 'openid profile',
      login_hint: 'user',
      binding_message: 'K7P2-QX',
      requested_expiry: '120',
      authorization_details: JSON.stringify([detail]),
      ...extra,
    },
    dispatcher,
  );
}

function pollToken(authReqId: string, clientId = CLIENT_ID): Promise<{ status: number; body: Json }> {
  return post(endpoint('token_endpoint'), {
    client_id: clientId,
    grant_type: 'urn:openid:params:grant-type:ciba',
    auth_req_id: authReqId,
  });
}

/** Waits until the bank's own poll record says a token poll of `authReqId` is on time (its interval has passed). */
async function untilPollIsDue(authReqId: string): Promise<void> {
  const key = createSandboxKeys(prefix).poll(authReqId);
  await waitFor(async () => Date.now() >= Number(await redis.hget(key, 'next')), 5000, 'the poll interval to pass');
}

/** Waits until the bank no longer lists the request as pending (its requested_expiry has passed). */
async function untilExpired(bindingMessage: string): Promise<void> {
  await waitFor(
    async () => !(await bank.pending('user')).some((p) => p.bindingMessage === bindingMessage),
    5000,
    `${bindingMessage} to expire`,
  );
}

async function pendingIdFor(bindingMessage: string): Promise<string> {
  const found = (await bank.pending('user')).find((p) => p.bindingMessage === bindingMessage);
  if (found === undefined) throw new Error(`no pending request ${bindingMessage}`);
  return found.id;
}

/** A started, approved request's token response (waits one interval before polling). */
async function approvedTokens(bindingMessage: string): Promise<Json> {
  const started = await startRequest({ binding_message: bindingMessage });
  expect(started.status).toBe(200);
  await bank.approve(await pendingIdFor(bindingMessage));
  await untilPollIsDue(started.body.auth_req_id as string);
  const token = await pollToken(started.body.auth_req_id as string);
  expect(token.status).toBe(200);
  return token.body;
}

function pay(
  accessToken: string,
  body: Json,
  idempotencyKey: string | undefined,
  dispatcher: Agent = client,
): Promise<{ status: number; body: Json }> {
  return request(`${bank.apiUrl}/payments`, {
    method: 'POST',
    dispatcher,
    headers: {
      authorization: `Bearer ${accessToken}`,
      'content-type': 'application/json',
      ...(idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey }),
    },
    body: JSON.stringify(body),
  }).then(async (res) => ({ status: res.statusCode, body: (await res.body.json()) as Json }));
}

const paymentBody = {
  amount: '12.90',
  currency: 'EUR',
  creditor: { name: 'Demo Tea Shop', iban: 'DE89370400440532013000' },
  remittance_information: 'Order pay_test',
  end_to_end_id: 'pay_test',
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sandbox-bank-'));
  certs = ensureDevCertificates(dir);
  prefix = `test:sandbox:${randomBytes(6).toString('hex')}:`;
  notifyServer = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      pings.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => notifyServer.listen(0, '127.0.0.1', resolve));
  notifyUrl = `http://127.0.0.1:${(notifyServer.address() as AddressInfo).port}/ciba/notify`;
  bank = await startSandboxBank({
    certs,
    redisUrl: REDIS_URL,
    redisPrefix: prefix,
    interval: 1,
    clients: [
      { clientId: CLIENT_ID, authMethod: 'tls_client_auth', deliveryMode: 'poll' },
      {
        clientId: PING_CLIENT_ID,
        authMethod: 'tls_client_auth',
        deliveryMode: 'ping',
        notificationEndpoint: notifyUrl,
      },
      {
        clientId: JWT_CLIENT_ID,
        authMethod: 'private_key_jwt',
        deliveryMode: 'poll',
        jwks: { keys: [createPublicKey(readFileSync(certs.signingKeyPs256)).export({ format: 'jwk' })] },
      },
      { clientId: SECRET_CLIENT_ID, authMethod: 'client_secret_basic', deliveryMode: 'poll', clientSecret: DEV_SECRET },
    ],
    log: (line) => logLines.push(line),
  });
  client = mtlsAgent(certs, { cert: certs.clientCert, key: certs.clientKey });
  intruder = mtlsAgent(certs, { cert: certs.otherClientCert, key: certs.otherClientKey });
  anonymous = mtlsAgent(certs);
  redis = new Redis(REDIS_URL);
  const res = await request(`${bank.issuer}/.well-known/openid-configuration`, { dispatcher: anonymous });
  discovery = (await res.body.json()) as Json;
  const jwks = await request(discovery.jwks_uri as string, { dispatcher: anonymous });
  opKeys = createLocalJWKSet((await jwks.body.json()) as JSONWebKeySet);
});

afterAll(async () => {
  await bank.close();
  await Promise.all([client.close(), intruder.close(), anonymous.close()]);
  redis.disconnect();
  await new Promise((resolve) => notifyServer.close(resolve));
  await deleteKeysWithPrefix(prefix, REDIS_URL);
  rmSync(dir, { recursive: true, force: true });
});

describe('sandbox bank: discovery', () => {
  test('when fetched without a client certificate, then it advertises CIBA, ping and poll, and mTLS aliases', () => {
    expect(discovery.issuer).toBe(bank.issuer);
    expect(discovery.backchannel_authentication_endpoint).toBe(`${bank.issuer}/backchannel`);
    expect(discovery.backchannel_token_delivery_modes_supported).toEqual(['poll', 'ping']);
    expect(discovery.mtls_endpoint_aliases).toMatchObject({
      token_endpoint: `${bank.issuer}/token`,
      backchannel_authentication_endpoint: `${bank.issuer}/backchannel`,
    });
    expect(discovery.id_token_signing_alg_values_supported).toEqual(['PS256']);
  });
});

describe('sandbox bank: backchannel authentication', () => {
  test('when the client presents its certificate, then it gets auth_req_id, expires_in and interval', async () => {
    const { status, body } = await startRequest({ binding_message: 'BC-OK' });
    expect(status).toBe(200);
    expect(Object.keys(body).sort()).toEqual(['auth_req_id', 'expires_in', 'interval']);
    expect(typeof body.auth_req_id).toBe('string');
    expect(body).toMatchObject({ expires_in: 120, interval: 1 });
    const line = logLines.find((l) => l.includes('BC-OK'));
    expect(line).toMatch(
      /^\[bank\] user "user" has a new request from Demo Tea Shop \(EUR 12\.90, code BC-OK\): approve at http:\/\/127\.0\.0\.1:\d+\/requests\/[\w-]+$/,
    );
    expect(logLines.join('\n')).not.toContain(body.auth_req_id as string);
    const pending = await bank.pending('user');
    expect(pending.find((p) => p.bindingMessage === 'BC-OK')).toMatchObject({
      login: 'user',
      amount: '12.90',
      currency: 'EUR',
      creditorName: 'Demo Tea Shop',
    });
  });

  test('when the client presents no certificate, then it is invalid_client', async () => {
    const { status, body } = await startRequest({}, anonymous);
    expect(status).toBe(401);
    expect(body.error).toBe('invalid_client');
  });

  test('when the certificate has another subject, then it is invalid_client', async () => {
    const { status, body } = await startRequest({}, intruder);
    expect(status).toBe(401);
    expect(body.error).toBe('invalid_client');
  });

  test('when the login_hint is unknown, then it is unknown_user_id', async () => {
    const { status, body } = await startRequest({ login_hint: 'nobody' });
    expect(status).toBe(400);
    expect(body.error).toBe('unknown_user_id');
  });

  test('when the binding_message has odd characters, then it is invalid_binding_message', async () => {
    const { body } = await startRequest({ binding_message: 'hello world!' });
    expect(body.error).toBe('invalid_binding_message');
  });

  test('when the authorization_details are malformed, then it is invalid_authorization_details', async () => {
    const { body } = await startRequest({
      authorization_details: JSON.stringify([{ ...detail, instructedAmount: { currency: 'EUR', amount: '12,90' } }]),
    });
    expect(body.error).toBe('invalid_authorization_details');
  });
});

describe('sandbox bank: other client authentication methods', () => {
  const form = { scope: 'openid', login_hint: 'user', binding_message: 'OTHER-AUTH' };

  test('when a private_key_jwt client signs a PS256 assertion, then the request is accepted', async () => {
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'PS256' })
      .setIssuer(JWT_CLIENT_ID)
      .setSubject(JWT_CLIENT_ID)
      .setAudience(bank.issuer)
      .setJti(randomBytes(12).toString('base64url'))
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(createPrivateKey(readFileSync(certs.signingKeyPs256)));
    const { status, body } = await post(
      `${bank.issuer}/backchannel`,
      {
        ...form,
        client_id: JWT_CLIENT_ID,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      },
      anonymous,
    );
    expect([status, body.error_description]).toEqual([200, undefined]);
    expect(typeof body.auth_req_id).toBe('string');
  });

  test('when a client_secret_basic client sends its secret, then the request is accepted; a wrong one is not', async () => {
    const call = (secret: string): Promise<{ status: number; body: Json }> =>
      request(`${bank.issuer}/backchannel`, {
        method: 'POST',
        dispatcher: anonymous,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${SECRET_CLIENT_ID}:${secret}`).toString('base64')}`,
        },
        body: new URLSearchParams(form).toString(),
      }).then(async (res) => ({ status: res.statusCode, body: (await res.body.json()) as Json }));
    expect((await call(DEV_SECRET)).status).toBe(200);
    expect((await call('wrong')).body.error).toBe('invalid_client');
  });
});

describe('sandbox bank: token endpoint', () => {
  test('when polled after requested_expiry, then expired_token', async () => {
    const started = await startRequest({ binding_message: 'EXPIRE-1', requested_expiry: '1' });
    await untilExpired('EXPIRE-1');
    const { status, body } = await pollToken(started.body.auth_req_id as string);
    expect([status, body.error]).toEqual([400, 'expired_token']);
  });

  test('when polled before approval, then authorization_pending; polled again at once, then slow_down', async () => {
    const started = await startRequest({ binding_message: 'POLL-1' });
    await untilPollIsDue(started.body.auth_req_id as string);
    const first = await pollToken(started.body.auth_req_id as string);
    expect([first.status, first.body.error]).toEqual([400, 'authorization_pending']);
    const second = await pollToken(started.body.auth_req_id as string);
    expect([second.status, second.body.error]).toEqual([400, 'slow_down']);
  });

  test('when approved, then a PS256 ID token and a certificate-bound JWT access token with the details', async () => {
    const tokens = await approvedTokens('APPROVE-1');
    const idToken = tokens.id_token as string;
    expect(decodeProtectedHeader(idToken).alg).toBe('PS256');
    const { payload: id } = await jwtVerify(idToken, opKeys, { issuer: bank.issuer, audience: CLIENT_ID });
    expect(id.sub).toBe('user');

    const accessToken = tokens.access_token as string;
    const { payload: at, protectedHeader } = await jwtVerify(accessToken, opKeys, {
      issuer: bank.issuer,
      audience: bank.apiUrl,
    });
    expect(protectedHeader.alg).toBe('PS256');
    const thumbprint = createHash('sha256')
      .update(new X509Certificate(readFileSync(certs.clientCert)).raw)
      .digest('base64url');
    expect(at.cnf).toEqual({ 'x5t#S256': thumbprint });
    expect(at.authorization_details).toEqual([detail]);
    expect(tokens.authorization_details).toEqual([detail]);
    expect(tokens.token_type).toBe('Bearer');
  });

  test('when denied, then access_denied', async () => {
    const started = await startRequest({ binding_message: 'DENY-1' });
    await bank.deny(await pendingIdFor('DENY-1'));
    await untilPollIsDue(started.body.auth_req_id as string);
    const { status, body } = await pollToken(started.body.auth_req_id as string);
    expect(status).toBe(400);
    expect(body.error).toBe('access_denied');
    await expect(bank.approve('unknown')).rejects.toThrow();
  });
});

describe('sandbox bank: payment API', () => {
  let accessToken: string;
  /** One approval pays one payment, so each case that pays gets its own token. */
  let tokenForMismatch: string;
  let tokenForFailures: string;
  let tokenForOnce: string;
  beforeAll(async () => {
    const tokens = await Promise.all(
      ['PAY-1', 'PAY-2', 'PAY-3', 'PAY-4'].map(async (m) => (await approvedTokens(m)).access_token as string),
    );
    [accessToken, tokenForMismatch, tokenForFailures, tokenForOnce] = tokens as [string, string, string, string];
  });

  test('when the payment matches the approval, then 201 accepted, and a replay gives the same id once', async () => {
    const first = await pay(accessToken, paymentBody, 'pay_idem_1');
    expect(first.status).toBe(201);
    expect(first.body.status).toBe('accepted');
    expect(first.body.id).toMatch(/^bp_/);
    const again = await pay(accessToken, paymentBody, 'pay_idem_1');
    expect(again).toEqual(first);
    const transfers = (await bank.transfers()).filter((t) => t.idempotencyKey === 'pay_idem_1');
    const clientCert = new X509Certificate(readFileSync(certs.clientCert));
    expect(transfers).toEqual([
      {
        bankPaymentId: first.body.id,
        clientId: CLIENT_ID,
        certThumbprint: createHash('sha256').update(clientCert.raw).digest('base64url'),
        idempotencyKey: 'pay_idem_1',
        amount: '12.90',
        currency: 'EUR',
        creditorIban: 'DE89370400440532013000',
        endToEndId: 'pay_test',
      },
    ]);
  });

  test('when another client certificate carries the token, then 401', async () => {
    const { status, body } = await pay(accessToken, paymentBody, 'pay_idem_2', intruder);
    expect(status).toBe(401);
    expect(body.error).toBe('invalid_token');
  });

  test('when the amount differs from the approved one, then 422 rejected and no transfer', async () => {
    const { status, body } = await pay(tokenForMismatch, { ...paymentBody, amount: '99.90' }, 'pay_idem_3');
    expect(status).toBe(422);
    expect(body).toMatchObject({ status: 'rejected', reason: 'amount_mismatch' });
    expect((await bank.transfers()).some((t) => t.idempotencyKey === 'pay_idem_3')).toBe(false);
  });

  test('when the Idempotency-Key is missing, then 400', async () => {
    const { status } = await pay(accessToken, paymentBody, undefined);
    expect(status).toBe(400);
  });

  test('when failures are injected, then 500 without a transfer, and the retry with the same key succeeds', async () => {
    await bank.failNextPayments(1);
    expect((await pay(tokenForFailures, paymentBody, 'pay_idem_4')).status).toBe(500);
    expect((await pay(tokenForFailures, paymentBody, 'pay_idem_4')).status).toBe(201);
    expect((await bank.transfers()).filter((t) => t.idempotencyKey === 'pay_idem_4')).toHaveLength(1);
  });

  test('when a token that paid once is used for another payment, then 401 and no second transfer; its own key still replays', async () => {
    const first = await pay(tokenForOnce, { ...paymentBody, end_to_end_id: 'pay_once' }, 'pay_once_1');
    expect(first.status).toBe(201);
    const second = await pay(tokenForOnce, { ...paymentBody, end_to_end_id: 'pay_once_2' }, 'pay_once_2');
    expect(second).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
    expect(await pay(tokenForOnce, { ...paymentBody, end_to_end_id: 'pay_once' }, 'pay_once_1')).toEqual(first);
    // the refused key was not left "in progress": it is simply unknown to the bank
    expect((await bank.transfers()).filter((t) => t.idempotencyKey.startsWith('pay_once'))).toHaveLength(1);
  });
});

describe('sandbox bank: reconciliation lookup', () => {
  function lookup(endToEndId: string | undefined, dispatcher: Agent = client) {
    const query = endToEndId === undefined ? '' : `?end_to_end_id=${encodeURIComponent(endToEndId)}`;
    return request(`${bank.apiUrl}/payments${query}`, { dispatcher }).then(async (res) => ({
      status: res.statusCode,
      body: (await res.body.json()) as Json,
    }));
  }

  test('when the client looks up a booked payment with its certificate and no token, then it is listed as accepted', async () => {
    const token = (await approvedTokens('LOOK-1')).access_token as string;
    const paid = await pay(token, { ...paymentBody, end_to_end_id: 'pay_lookup' }, 'pay_lookup');
    expect(paid.status).toBe(201);
    expect(await lookup('pay_lookup')).toEqual({
      status: 200,
      body: { payments: [{ id: paid.body.id, status: 'accepted', end_to_end_id: 'pay_lookup' }] },
    });
  });

  test('when nothing was booked under the id, then an empty list', async () => {
    expect(await lookup('pay_never')).toEqual({ status: 200, body: { payments: [] } });
  });

  test("when another client's certificate looks up the payment, then it is not listed", async () => {
    expect(await lookup('pay_lookup', intruder)).toEqual({ status: 200, body: { payments: [] } });
  });

  test('when no client certificate is presented, then 401; without end_to_end_id, 400', async () => {
    expect((await lookup('pay_lookup', anonymous)).status).toBe(401);
    expect((await lookup(undefined)).status).toBe(400);
  });
});

describe('sandbox bank: ping mode', () => {
  test('when approved, then the OP posts auth_req_id to the notification endpoint with the bearer token', async () => {
    const notificationToken = randomBytes(24).toString('base64url');
    const started = await post(endpoint('backchannel_authentication_endpoint'), {
      client_id: PING_CLIENT_ID,
      scope: 'openid',
      login_hint: 'user',
      binding_message: 'PING-1',
      client_notification_token: notificationToken,
      authorization_details: JSON.stringify([detail]),
    });
    expect(started.status).toBe(200);
    await bank.approve(await pendingIdFor('PING-1'));
    expect(pings).toHaveLength(1);
    expect(pings[0]?.headers.authorization).toBe(`Bearer ${notificationToken}`);
    expect(JSON.parse(pings[0]?.body ?? '{}')).toEqual({ auth_req_id: started.body.auth_req_id });
    await untilPollIsDue(started.body.auth_req_id as string);
    const token = await pollToken(started.body.auth_req_id as string, PING_CLIENT_ID);
    expect(token.status).toBe(200);
  });
});

describe('sandbox bank: restart', () => {
  test('when restarted on the same Redis prefix, then pending requests and the signing key survive', async () => {
    await startRequest({ binding_message: 'RESTART-1' });
    const { keys: before } = (await (
      await request(discovery.jwks_uri as string, { dispatcher: anonymous })
    ).body.json()) as {
      keys: JWK[];
    };
    await bank.close();
    bank = await startSandboxBank({
      certs,
      redisUrl: REDIS_URL,
      redisPrefix: prefix,
      interval: 1,
      clients: [{ clientId: CLIENT_ID, authMethod: 'tls_client_auth', deliveryMode: 'poll' }],
      log: (line) => logLines.push(line),
    });
    expect((await bank.pending('user')).map((p) => p.bindingMessage)).toContain('RESTART-1');
    const res = await request(`${bank.issuer}/jwks`, { dispatcher: anonymous });
    const { keys: after } = (await res.body.json()) as { keys: JWK[] };
    expect(after.map((k) => k.kid)).toEqual(before.map((k) => k.kid));
  });
});
