import { api } from '../support/api.js';
import { ONE_TEA, useConformanceHarness, type ConformanceHarness } from '../support/service-against-op.js';

/**
 * Issue 11.6: which X-Forwarded-For the per-address limit believes (TRUST_PROXY), IPv6 clients
 * limited per /64, and /metrics off the public port unless its token is shown.
 */
const LIMITS = { RATE_LIMIT_CHECKOUT_PER_MINUTE: '2', METRICS_TOKEN: 'metrics_token_for_tests_0123456789' };

function clientOf(h: ConformanceHarness) {
  return async (forwardedFor: string | null, headers: Record<string, string> = {}) => {
    const res = await api(h.svc.url, 'POST', '/checkout', {
      body: ONE_TEA,
      headers: { ...(forwardedFor === null ? {} : { 'x-forwarded-for': forwardedFor }), ...headers },
    });
    if (res.status === 202)
      await api(h.svc.url, 'POST', `/payments/${res.json.id}/cancel`, {
        headers: { authorization: `Bearer ${res.json.client_secret}` },
      });
    return res.status === 429 ? `429 ${String(res.json.detail)}` : String(res.status);
  };
}

describe('TRUST_PROXY=1 (one load balancer in front)', () => {
  const h = useConformanceHarness({}, { ...LIMITS, TRUST_PROXY: '1' });
  const from = clientOf(h);

  test('when clients come through the proxy, then each address has its own limit', async () => {
    expect([await from('203.0.113.1'), await from('203.0.113.1')]).toEqual(['202', '202']);
    expect(await from('203.0.113.1')).toMatch(/^429 .*address/);
    expect(await from('203.0.113.2')).toBe('202');
  });

  test('when a client prepends its own X-Forwarded-For entries, then only the hop the proxy added counts', async () => {
    expect(await from('198.51.100.1, 203.0.113.9')).toBe('202');
    expect(await from('198.51.100.2, 203.0.113.9')).toBe('202');
    expect(await from('198.51.100.3, 203.0.113.9')).toMatch(/^429/);
  });

  test('when IPv6 clients change addresses within one /64, then they share one limit; the next /64 does not', async () => {
    expect(await from('2001:db8:1:2::1')).toBe('202');
    expect(await from('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('202');
    expect(await from('2001:db8:1:2:ffff::9')).toMatch(/^429/);
    expect(await from('2001:db8:1:3::1')).toBe('202');
  });

  test("when the shop's backend checks out with its key, then the per-address limit does not apply", async () => {
    const shop = { authorization: `Bearer ${h.svc.env.SHOP_API_KEY!}` };
    for (let i = 0; i < 4; i++) expect(await from('203.0.113.50', shop)).toBe('202');
  });
});

describe('TRUST_PROXY=127.0.0.0/8 (trusted proxy addresses)', () => {
  const h = useConformanceHarness({}, { ...LIMITS, TRUST_PROXY: '127.0.0.0/8' });
  const from = clientOf(h);

  test('when the chain holds an address outside the trusted range, then that address is the client', async () => {
    // The socket peer (127.0.0.1) is trusted, 10.1.1.1 is not: it is the client, whatever came before it.
    expect(await from('198.51.100.1, 10.1.1.1')).toBe('202');
    expect(await from('198.51.100.2, 10.1.1.1')).toBe('202');
    expect(await from('10.1.1.1')).toMatch(/^429/);
    expect(await from('10.1.1.2')).toBe('202');
  });

  test('/metrics: 401 without the right token on the API port, 200 with it (any case of Bearer)', async () => {
    expect((await api(h.svc.url, 'GET', '/metrics')).status).toBe(401);
    const wrong = await api(h.svc.url, 'GET', '/metrics', { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="metrics"');
    const right = await api(h.svc.url, 'GET', '/metrics', {
      headers: { authorization: `bearer ${LIMITS.METRICS_TOKEN}` },
    });
    expect(right.status).toBe(200);
    expect(String(right.json)).toContain('checkouts_total');
  });
});

describe('no TRUST_PROXY, no metrics settings', () => {
  const h = useConformanceHarness({}, { RATE_LIMIT_CHECKOUT_PER_MINUTE: '2', METRICS_PORT: '0' });
  const from = clientOf(h);

  test('when clients send X-Forwarded-For, then it is ignored: the socket address is limited', async () => {
    expect(await from('203.0.113.1')).toBe('202');
    expect(await from('203.0.113.2')).toBe('202');
    expect(await from('203.0.113.3')).toMatch(/^429/);
  });

  test('/metrics is not on the public port, but on METRICS_PORT', async () => {
    const res = await api(h.svc.url, 'GET', '/metrics');
    expect(res.status).toBe(404);
    expect(res.json.code).toBe('not_found');
    const own = await api(h.svc.service.metricsUrl!, 'GET', '/metrics');
    expect(own.status).toBe(200);
    expect(String(own.json)).toContain('checkouts_total');
    expect((await api(h.svc.service.metricsUrl!, 'GET', '/checkout')).status).toBe(404);
  });
});
