import { api, waitFor, waitForStatus } from '../support/api.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';
import { startTestService, type SandboxService } from '../support/service.js';
import { newWebhookSecret, startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

/** OTLP span kinds (opentelemetry-proto trace.proto). */
const KIND = { internal: 1, server: 2, client: 3, consumer: 5 };

/**
 * Tracing (issue 15): with OTEL_EXPORTER_OTLP_ENDPOINT set and OTEL_EXPORTER_OTLP_PROTOCOL=http/json,
 * a paid checkout is one trace, from POST /checkout through bc-authorize, every poll and its token
 * request, the bank payment call and each webhook delivery, across the API → Redis → worker hop,
 * received here by a local OTLP/HTTP endpoint. The bank's approval waits a little, so there are
 * several polls.
 */
describe('one trace per paid checkout', () => {
  const secret = newWebhookSecret();
  let otlp: OtlpReceiver;
  let hooks: WebhookReceiver;
  let sys: SandboxService;

  beforeAll(async () => {
    otlp = await startOtlpReceiver();
    hooks = await startWebhookReceiver({ secret });
    sys = await startTestService({
      bank: { sandbox: { interval: 1, autoApprove: 'approve', approvalDelayMs: 2500 } },
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'checkout-under-test',
        WEBHOOK_URL: `${hooks.origin}/hooks`,
        WEBHOOK_SECRET: secret,
        WEBHOOK_ALLOW_PRIVATE: 'true',
      },
    });
  });
  afterAll(async () => {
    await sys.close();
    await hooks.close();
    await otlp.close();
  });

  test('when a checkout is paid, then its spans form one connected trace with no secret in any attribute', async () => {
    const res = await api(sys.url, 'POST', '/checkout', {
      body: { items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'user' },
    });
    expect(res.status).toBe(202);
    const { id, client_secret: clientSecret } = res.json;
    await waitForStatus(sys.url, id, clientSecret, ['succeeded'], 30_000);
    // The secret in the query, where EventSource sends it: the span must not record it.
    await api(sys.url, 'GET', `/payments/${id}?client_secret=${encodeURIComponent(clientSecret)}`);
    await hooks.waitFor((r) => r.some((h) => h.payload?.type === 'payment.succeeded' && h.payload.data.id === id));

    const root = await waitFor(async () =>
      Promise.resolve(otlp.spans.find((s) => s.name === 'POST /checkout' && s.attributes['url.path'] === '/checkout')),
    );
    const inTrace = () => otlp.spans.filter((s) => s.traceId === root.traceId);
    // Three events (pending_authorization, authorized, succeeded), each delivered once.
    await otlp.waitForSpans(() => inTrace().filter((s) => s.name === 'webhook delivery').length >= 3, 30_000);
    const spans = inTrace();
    const byName = (name: string) => spans.filter((s) => s.name === name);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const parentOf = (s: ReceivedSpan) => byId.get(s.parentSpanId)?.name;

    expect(root.kind).toBe(KIND.server);
    expect(root.parentSpanId || null).toBeNull();
    expect(root.attributes).toMatchObject({ 'http.route': '/checkout', 'http.response.status_code': 202 });
    expect(root.serviceName).toBe('checkout-under-test');
    expect(byName('ciba backchannel_authentication').map(parentOf)).toEqual(['POST /checkout']);

    const polls = byName('job poll');
    expect(polls.length).toBeGreaterThanOrEqual(2); // approval comes after a few polls
    for (const poll of polls) expect(poll).toMatchObject({ kind: KIND.consumer, parentSpanId: root.spanId });
    const tokens = byName('ciba token');
    expect(tokens).toHaveLength(polls.length);
    expect(new Set(tokens.map(parentOf))).toEqual(new Set(['job poll']));
    expect(tokens.map((t) => t.attributes['ciba.outcome'])).toContain('authorized');
    expect(tokens.every((t) => t.kind === KIND.client)).toBe(true);

    expect(byName('job submit').map((s) => s.parentSpanId)).toEqual([root.spanId]);
    expect(byName('bank payment').map(parentOf)).toEqual(['job submit']);
    expect(byName('bank payment')[0]?.attributes['http.response.status_code']).toBe(201);
    const deliveries = byName('webhook delivery');
    expect(deliveries.map(parentOf)).toEqual(deliveries.map(() => 'job hook'));
    // Every span hangs off another span of the same trace, up to the checkout.
    for (const s of spans) if (s !== root) expect(byId.has(s.parentSpanId)).toBe(true);

    // The shop received the same trace as W3C traceparent on every delivery.
    for (const h of hooks.received.filter((r) => r.payload?.data.id === id))
      expect(String(h.headers.traceparent)).toMatch(new RegExp(`^00-${root.traceId}-[0-9a-f]{16}-01$`));

    // Never a token, secret, auth_req_id or query string in what was exported.
    const record = await sys.service.store.get(id);
    const exported = JSON.stringify(otlp.spans);
    expect(record?.authReqId).toBeTruthy();
    for (const secretValue of [clientSecret, sys.env.SHOP_API_KEY!, record!.authReqId!, secret])
      expect(exported).not.toContain(secretValue);
    expect(exported).not.toMatch(/client_secret|auth_req_id|bearer|access_token|\?/i);
    const read = otlp.spans.find((s) => s.attributes['http.route'] === '/payments/:id');
    expect(read?.attributes['url.path']).toBe(`/payments/${id}`);
    expect(otlp.rejected).toEqual([]);
  }, 60_000);

  test('when an anonymous caller sends traceparent and baggage, then the checkout starts its own trace, links theirs and forwards no baggage', async () => {
    const callerTrace = 'a'.repeat(32);
    const res = await api(sys.url, 'POST', '/checkout', {
      body: { items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'user' },
      headers: { traceparent: `00-${callerTrace}-${'b'.repeat(16)}-01`, baggage: 'planted=by-caller' },
    });
    expect(res.status).toBe(202);
    const { id, client_secret: clientSecret } = res.json;
    await waitForStatus(sys.url, id, clientSecret, ['succeeded'], 30_000);
    await hooks.waitFor((r) => r.some((h) => h.payload?.type === 'payment.succeeded' && h.payload.data.id === id));

    const root = await waitFor(async () =>
      Promise.resolve(
        otlp.spans.find((s) => s.name === 'POST /checkout' && s.links?.some((l) => l.traceId === callerTrace)),
      ),
    );
    expect(root.traceId).not.toBe(callerTrace);
    expect(root.parentSpanId || null).toBeNull();
    expect(otlp.spans.filter((s) => s.traceId === callerTrace)).toEqual([]);
    const deliveries = hooks.received.filter((r) => r.payload?.data.id === id);
    expect(deliveries.length).toBeGreaterThan(0);
    for (const h of deliveries) {
      expect(String(h.headers.traceparent)).toContain(root.traceId);
      expect(h.headers.baggage).toBeUndefined();
    }
  }, 60_000);

  test('when the shop backend sends its traceparent with the shop key, then the checkout continues that trace', async () => {
    const shopTrace = 'c'.repeat(32);
    const shopSpan = 'd'.repeat(16);
    const res = await api(sys.url, 'POST', '/checkout', {
      body: { items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'user' },
      headers: { authorization: `Bearer ${sys.env.SHOP_API_KEY!}`, traceparent: `00-${shopTrace}-${shopSpan}-01` },
    });
    expect(res.status).toBe(202);
    const root = await waitFor(async () =>
      Promise.resolve(otlp.spans.find((s) => s.name === 'POST /checkout' && s.traceId === shopTrace)),
    );
    expect(root.parentSpanId).toBe(shopSpan);
  }, 60_000);
});
