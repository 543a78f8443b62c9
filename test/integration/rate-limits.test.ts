import { api } from '../support/api.js';
import { startTestService, type SandboxService } from '../support/service.js';

const cart = (loginHint: string) => ({ items: [{ sku: 'tea-01', quantity: 1 }], login_hint: loginHint });

/** Rate limits on checkout (issue 5): per client IP, and per login_hint against push bombing. */
describe('checkout rate limits', () => {
  let sys: SandboxService;
  beforeAll(async () => {
    sys = await startTestService({
      env: { RATE_LIMIT_CHECKOUT_PER_MINUTE: '5', RATE_LIMIT_LOGIN_HINT_PER_MINUTE: '2' },
    });
  });
  afterAll(async () => {
    await sys.close();
  });

  function expect429(res: Awaited<ReturnType<typeof api>>, detail: RegExp) {
    expect(res.status).toBe(429);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(res.json).toMatchObject({ code: 'rate_limited', status: 429 });
    expect(res.json.detail).toMatch(detail);
  }

  test('when one customer gets more approval requests than allowed, then 429 and no push reaches the phone', async () => {
    expect((await api(sys.url, 'POST', '/checkout', { body: cart('user') })).status).toBe(202);
    expect((await api(sys.url, 'POST', '/checkout', { body: cart('user') })).status).toBe(202);
    expect429(await api(sys.url, 'POST', '/checkout', { body: cart('user') }), /bank customer/);
    expect(await sys.bank.pending('user')).toHaveLength(2);
  });

  test('when one address sends more checkouts than allowed, then 429 whatever the customer', async () => {
    // 3 used above; two more (for customers the bank does not know) use up the address's 5.
    expect((await api(sys.url, 'POST', '/checkout', { body: cart('someone-1') })).status).toBe(422);
    expect((await api(sys.url, 'POST', '/checkout', { body: cart('someone-2') })).status).toBe(422);
    expect429(await api(sys.url, 'POST', '/checkout', { body: cart('someone-3') }), /address/);
  });
});
