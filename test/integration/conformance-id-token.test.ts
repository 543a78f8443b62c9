import { AUTH_REQ_ID_CLAIM, JWKS_MAX_AGE_MS } from '../../src/ciba/id-token.js';
import { waitFor } from '../support/api.js';
import { type IdTokenOptions } from '../support/scripted-op.js';
import { startServiceAgainst, type StartedPayment, useConformanceHarness } from '../support/service-against-op.js';

/**
 * Conformance (issue 4), the token response: ID token validation, authorization_details and the
 * response's shape. A token the service must refuse ends the payment and moves no money.
 */

const h = useConformanceHarness();
const { clock, advanceTo } = h;

const nowSeconds = () => Math.floor(clock.now() / 1000);

/** Checkout, the customer approves, the first poll gets the token response. */
async function approved(options: { idToken?: IdTokenOptions; authorizationDetails?: unknown } = {}) {
  const p = await h.svc.start();
  h.op.approve(p.authReqId, options);
  advanceTo((await h.svc.nextPollAt(p))!);
  const final = await h.svc.settle(p);
  return { p, final };
}

async function expectRefused(p: StartedPayment, final: { status: string; failure_code: string | null }, code: string) {
  expect(final).toMatchObject({ status: 'failed', failure_code: code });
  expect(p.polls()).toHaveLength(1);
  expect(p.paymentCalls()).toHaveLength(0);
  expect(await h.svc.nextPollAt(p)).toBeNull();
  clock.advance(60_000);
  await h.svc.idle();
  expect(p.polls()).toHaveLength(1); // the consumed auth_req_id is never sent again
  expect(h.op.requestsTo('payments')).toHaveLength(0);
}

describe('ID token: every broken token → failed/invalid_id_token, no payment call', () => {
  const cases: [string, () => IdTokenOptions][] = [
    ['signed with another algorithm (ES256)', () => ({ alg: 'ES256' })],
    ['signed with a weaker algorithm the bank did not register (RS256)', () => ({ alg: 'RS256' })],
    ['alg none', () => ({ alg: 'none' })],
    ['a bad signature', () => ({ tamper: true })],
    ['an unknown kid, keys not rotated', () => ({ key: 'next' })],
    ['a wrong iss', () => ({ claims: { iss: 'https://evil.example' } })],
    ['an iss differing by a trailing slash', () => ({ claims: { iss: `${h.op.issuer}/` } })],
    ['a wrong aud', () => ({ claims: { aud: 'another-client' } })],
    ['an extra aud without azp', () => ({ claims: { aud: [h.op.clientId, 'another-client'] } })],
    [
      'an extra aud with azp of another client',
      () => ({ claims: { aud: [h.op.clientId, 'another-client'], azp: 'another-client' } }),
    ],
    ['exp in the past (beyond the 30 s skew)', () => ({ claims: { exp: nowSeconds() - 60 } })],
    ['iat too old (more than 5 min + skew)', () => ({ claims: { iat: nowSeconds() - 400, exp: nowSeconds() + 300 } })],
    ['iat in the future', () => ({ claims: { iat: nowSeconds() + 120 } })],
    ['no iss', () => ({ claims: { iss: undefined } })],
    ['no aud', () => ({ claims: { aud: undefined } })],
    ['no exp', () => ({ claims: { exp: undefined } })],
    ['no iat', () => ({ claims: { iat: undefined } })],
    ['no sub', () => ({ claims: { sub: undefined } })],
    ['an auth_req_id claim of another request', () => ({ claims: { [AUTH_REQ_ID_CLAIM]: 'arid_of_someone_else' } })],
  ];
  test.each(cases)('%s', async (_name, idToken) => {
    const { p, final } = await approved({ idToken: idToken() });
    await expectRefused(p, final, 'invalid_id_token');
  });
});

describe('ID token: valid variants', () => {
  test('an unknown kid after the bank rotated its keys: the JWKS is fetched again and the payment succeeds', async () => {
    const fetches = h.op.requestsTo('jwks').length;
    h.op.rotateKeys();
    clock.advance(11_000); // the refetch on an unknown kid is rate-limited to one per 10 s
    const { p, final } = await approved({ idToken: { key: 'next' } });
    expect(final).toMatchObject({ status: 'succeeded', failure_code: null });
    expect(h.op.requestsTo('jwks').length).toBe(fetches + 1);
    expect(p.paymentCalls()).toHaveLength(1);
  });

  test('an extra aud with azp = our client id succeeds', async () => {
    const { p, final } = await approved({
      idToken: { claims: { aud: [h.op.clientId, 'another-client'], azp: h.op.clientId } },
    });
    expect(final).toMatchObject({ status: 'succeeded' });
    expect(p.paymentCalls()).toHaveLength(1);
  });

  test('without the auth_req_id claim (it is optional) succeeds', async () => {
    const { p, final } = await approved({ idToken: { claims: { [AUTH_REQ_ID_CLAIM]: undefined } } });
    expect(final).toMatchObject({ status: 'succeeded' });
    expect(p.paymentCalls()).toHaveLength(1);
  });
});

describe('authorization_details in the token response', () => {
  const requested = (p: StartedPayment) => JSON.parse(p.backchannel.form.authorization_details!)[0];
  const cases: [string, (d: any) => unknown][] = [
    ['another amount', (d) => [{ ...d, instructedAmount: { ...d.instructedAmount, amount: '13.90' } }]],
    ['another currency', (d) => [{ ...d, instructedAmount: { ...d.instructedAmount, currency: 'USD' } }]],
    ['another creditor name', (d) => [{ ...d, creditorName: 'Mallory Ltd' }]],
    ['another creditor IBAN', (d) => [{ ...d, creditorAccount: { iban: 'GB33BUKB20201555555555' } }]],
    ['a second payment', (d) => [d, d]],
    ['no payment at all', () => []],
    ['not an array', (d) => d],
  ];
  test.each(cases)('%s → failed/authorization_mismatch, no payment call', async (_name, change) => {
    const p = await h.svc.start();
    h.op.approve(p.authReqId, { authorizationDetails: change(requested(p)) });
    advanceTo((await h.svc.nextPollAt(p))!);
    await expectRefused(p, await h.svc.settle(p), 'authorization_mismatch');
  });

  test('the same payment written differently ("12.9", IBAN with spaces) matches', async () => {
    const p = await h.svc.start();
    const d = requested(p);
    h.op.approve(p.authReqId, {
      authorizationDetails: [
        {
          ...d,
          instructedAmount: { currency: 'eur', amount: '12.9' },
          creditorAccount: { iban: 'de89 3704 0044 0532 0130 00' },
        },
      ],
    });
    advanceTo((await h.svc.nextPollAt(p))!);
    expect(await h.svc.settle(p)).toMatchObject({ status: 'succeeded' });
    expect(p.paymentCalls()).toHaveLength(1);
  });

  test('absent from the token response (RFC 9396 §7: the AS MUST return them) → failed/authorization_mismatch, no payment call', async () => {
    const { p, final } = await approved({ authorizationDetails: null });
    await expectRefused(p, final, 'authorization_mismatch');
  });
});

describe('CIBA_REQUIRE_GRANTED_DETAILS=false (a bank known not to return them)', () => {
  test('a token response without authorization_details pays', async () => {
    const relaxed = await startServiceAgainst(h.op, { CIBA_REQUIRE_GRANTED_DETAILS: 'false' }, { clock });
    try {
      const p = await relaxed.start();
      h.op.approve(p.authReqId, { authorizationDetails: null });
      advanceTo((await relaxed.nextPollAt(p))!);
      expect(await relaxed.settle(p)).toMatchObject({ status: 'succeeded' });
      expect(p.paymentCalls()).toHaveLength(1);
    } finally {
      await relaxed.cancelOpen();
      await relaxed.close();
    }
  });
});

describe('the bank keys unavailable while a token is held', () => {
  test('the JWKS fetch fails twice after the keys aged out: the token is kept, validated again, and paid; the token endpoint is asked once', async () => {
    clock.advance(JWKS_MAX_AGE_MS + 1000);
    h.op.script('jwks', { status: 503 }, { status: 200, hangUp: true });
    const p = await h.svc.start();
    h.op.approve(p.authReqId);
    advanceTo((await h.svc.nextPollAt(p))!);
    const held = await waitFor(
      async () => (await h.svc.service.store.get(p.id))?.heldToken,
      5000,
      'the kept token response',
    );
    expect(held).toMatch(/^v2\./); // sealed, never the token itself
    expect((await h.svc.status(p)).status).toBe('pending_authorization');
    expect(await h.svc.settle(p, ['succeeded', 'failed'], 15_000)).toMatchObject({ status: 'succeeded' });
    expect(p.polls()).toHaveLength(1);
    expect(p.paymentCalls()).toHaveLength(1);
    expect(h.op.requestsTo('jwks').length).toBeGreaterThanOrEqual(3);
    expect((await h.svc.service.store.get(p.id))?.heldToken).toBeNull();
    const alarms = h.svc.logs.filter((l) => l.includes(p.id) && l.includes('bank keys are unavailable'));
    expect(alarms).toHaveLength(2);
    expect(await h.svc.service.metrics.registry.getSingleMetricAsString('operator_alarms_total')).toMatch(
      /alarm="bank_keys_unavailable"\} 2/,
    );
  });
});

describe('token response shape', () => {
  test('without scope, expires_in and refresh_token, token_type "bearer" in lower case: fine', async () => {
    h.op.script(
      'token',
      h.op.tokenSuccess({
        body: { token_type: 'bearer', expires_in: undefined, scope: undefined, refresh_token: undefined },
      }),
    );
    const p = await h.svc.start();
    advanceTo((await h.svc.nextPollAt(p))!);
    expect(await h.svc.settle(p)).toMatchObject({ status: 'succeeded', failure_code: null });
    expect(p.polls()).toHaveLength(1);
    expect(p.paymentCalls()).toHaveLength(1);
  });

  test.each([
    ['token_type DPoP', { token_type: 'DPoP' }],
    ['no id_token', { id_token: undefined }],
    ['no access_token', { access_token: undefined }],
    ['a string expires_in', { expires_in: '300' }],
  ])('%s → failed/authorization_error, no payment call', async (_name, body) => {
    h.op.script('token', h.op.tokenSuccess({ body }));
    const p = await h.svc.start();
    advanceTo((await h.svc.nextPollAt(p))!);
    await expectRefused(p, await h.svc.settle(p), 'authorization_error');
  });
});
