import { api } from '../support/api.js';
import { replies, type Reply, type Step } from '../support/scripted-op.js';
import { ONE_TEA, useConformanceHarness } from '../support/service-against-op.js';

/**
 * Conformance (issue 4), backchannel authentication endpoint (CIBA Core §7): what the service
 * sends, and how each answer of the bank becomes the checkout's answer. A failed checkout stores
 * nothing and never leads to a token request.
 */

const h = useConformanceHarness({}, { CIBA_REQUESTED_EXPIRY: '45', CIBA_SCOPE: 'openid payments' });
const { clock } = h;

test('the request: mTLS alias, client_id, scope, login_hint, binding_message, requested_expiry, authorization_details; no notification token in poll mode', async () => {
  const p = await h.svc.start('alice');
  const form = p.backchannel.form;
  expect(p.backchannel.path).toBe('/mtls/bc-authorize');
  expect(p.backchannel.clientCert).toMatchObject({ subject: 'CN=client', authorized: true });
  expect(form).toMatchObject({
    client_id: h.op.clientId,
    scope: 'openid payments',
    login_hint: 'alice',
    binding_message: p.bindingMessage,
    requested_expiry: '45',
  });
  expect(form.client_notification_token).toBeUndefined();
  expect(JSON.parse(form.authorization_details!)).toEqual([
    {
      type: 'payment_initiation',
      instructedAmount: { currency: 'EUR', amount: '12.90' },
      creditorName: 'Demo Tea Shop',
      creditorAccount: { iban: 'DE89370400440532013000' },
      remittanceInformationUnstructured: `Order ${p.id}`,
    },
  ]);
});

/** Runs one refused checkout: its answer, and that nothing was stored and no token was ever asked for. */
async function refusedCheckout(step: Step | undefined, loginHint = 'alice') {
  if (step) h.op.script('backchannel', step);
  const before = await h.svc.keys();
  const tokenRequests = h.op.requestsTo('token').length;
  const res = await h.svc.checkout({ ...ONE_TEA, login_hint: loginHint });
  expect(h.op.requestsTo('backchannel')).toHaveLength(1);
  expect(await h.svc.keys()).toEqual(before);
  clock.advance(600_000);
  await h.svc.idle();
  expect(h.op.requestsTo('token')).toHaveLength(tokenRequests);
  expect((await h.svc.service.scheduler.depth()).due).toBe(0);
  return res;
}

describe('bank errors at checkout', () => {
  test('unknown_user_id → 422 unknown_bank_user', async () => {
    const res = await refusedCheckout(undefined, 'unknown'); // the OP's own answer for an unknown login_hint
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ code: 'unknown_bank_user', status: 422 });
  });

  test.each([
    'invalid_binding_message',
    'expired_login_hint_token',
    'access_denied',
    'invalid_request',
    'invalid_scope',
    'missing_user_code',
  ])('%s → 422 bank_request_rejected', async (error) => {
    const res = await refusedCheckout({
      status: error === 'access_denied' ? 403 : 400,
      json: { error, error_description: 'no' },
    });
    expect(res.status).toBe(422);
    expect(res.json).toMatchObject({ code: 'bank_request_rejected' });
    expect(JSON.stringify(res.json)).not.toContain('error_description');
  });

  test.each([
    ['invalid_client', { status: 401, json: { error: 'invalid_client' } }],
    ['unauthorized_client', { status: 400, json: { error: 'unauthorized_client' } }],
    ['a 401 without an OAuth error', { status: 401, text: 'no' }],
  ] as [string, Reply][])('%s → 502 bank_configuration_error', async (_name, reply) => {
    const res = await refusedCheckout(reply);
    expect(res.status).toBe(502);
    expect(res.json).toMatchObject({ code: 'bank_configuration_error' });
  });

  test.each([
    ['500', { status: 500, text: 'oops' }, '5'],
    ['503 with Retry-After: 7', { status: 503, headers: { 'retry-after': '7' } }, '7'],
    ['429 with Retry-After: 12', { status: 429, headers: { 'retry-after': '12' }, json: { error: 'slow' } }, '12'],
    ['429 without Retry-After', { status: 429 }, '5'],
    ['a connection reset', { status: 500, hangUp: true }, '5'],
  ] as [string, Reply, string][])('%s → 503 bank_unavailable with Retry-After', async (_name, reply, retryAfter) => {
    const res = await refusedCheckout(reply);
    expect(res.status).toBe(503);
    expect(res.json).toMatchObject({ code: 'bank_unavailable' });
    expect(res.headers['retry-after']).toBe(retryAfter);
  });

  test('503 with Retry-After as an HTTP-date → 503 with Retry-After in seconds', async () => {
    const res = await refusedCheckout((req) => ({
      status: 503,
      headers: { 'retry-after': new Date(req.at + 20_000).toUTCString() },
    }));
    expect(res.status).toBe(503);
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(19);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(20);
  });
});

describe('malformed backchannel answers → 502 bank_invalid_response, no token request ever', () => {
  test.each([
    ['no auth_req_id', { status: 200, json: { expires_in: 60, interval: 1 } }],
    ['an empty auth_req_id', { status: 200, json: { auth_req_id: '', expires_in: 60 } }],
    ['no expires_in', { status: 200, json: { auth_req_id: 'arid_x' } }],
    ['a non-numeric expires_in', { status: 200, json: { auth_req_id: 'arid_x', expires_in: '60' } }],
    ['a negative expires_in', { status: 200, json: { auth_req_id: 'arid_x', expires_in: -1 } }],
    ['a non-numeric interval', { status: 200, json: { auth_req_id: 'arid_x', expires_in: 60, interval: 'soon' } }],
    ['an interval of 0.5 s', { status: 200, json: { auth_req_id: 'arid_x', expires_in: 60, interval: 0.5 } }],
    ['an interval as a string "5"', { status: 200, json: { auth_req_id: 'arid_x', expires_in: 60, interval: '5' } }],
    ['a zero interval', { status: 200, json: { auth_req_id: 'arid_x', expires_in: 60, interval: 0 } }],
    ['a fractional expires_in', { status: 200, json: { auth_req_id: 'arid_x', expires_in: 59.5, interval: 1 } }],
    [
      'malformed JSON',
      { status: 200, text: '{"auth_req_id": "arid_x", ', headers: { 'content-type': 'application/json' } },
    ],
    [
      'a 400 without an OAuth error',
      { status: 400, text: '<html>Bad Request</html>', headers: { 'content-type': 'text/html' } },
    ],
  ] as [string, Reply][])('%s', async (_name, reply) => {
    const res = await refusedCheckout(reply);
    expect(res.status).toBe(502);
    expect(res.json).toMatchObject({ code: 'bank_invalid_response' });
  });
});

test('a bank granting longer than CIBA_REQUESTED_EXPIRY: the payment expires at the requested expiry', async () => {
  h.op.script('backchannel', replies.json(200, { auth_req_id: 'arid_long', expires_in: 3600, interval: 1 }));
  const res = await h.svc.checkout();
  expect(res.status).toBe(202);
  const record = await h.svc.service.store.get(res.json.id);
  expect(record!.expiresAt - record!.createdAt).toBe(h.svc.config.ciba.requestedExpiry * 1000);
  expect(Date.parse(res.json.expires_at)).toBe(record!.expiresAt);
  await api(h.svc.url, 'POST', `/payments/${res.json.id}/cancel`, {
    headers: { authorization: `Bearer ${res.json.client_secret}` },
  });
});

test('a backchannel answer without interval: the first poll is due 5 s after it (CIBA Core §7.3 default)', async () => {
  h.op.script('backchannel', replies.json(200, { auth_req_id: 'arid_no_interval', expires_in: 60 }));
  const res = await h.svc.checkout();
  expect(res.status).toBe(202);
  const record = await h.svc.service.store.get(res.json.id);
  expect(record?.intervalMs).toBe(5000);
  expect(
    Number(
      await h.svc.service.redis.zscore(h.svc.service.keys.dueOf(`poll:${res.json.id}`).key, `poll:${res.json.id}`),
    ),
  ).toBe(record!.createdAt + 5000);
  await api(h.svc.url, 'POST', `/payments/${res.json.id}/cancel`, {
    headers: { authorization: `Bearer ${res.json.client_secret}` },
  });
});
