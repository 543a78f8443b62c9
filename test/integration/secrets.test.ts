import { open } from '../../src/crypto/sealing.js';
import { api, waitFor, waitForStatus } from '../support/api.js';
import { startTestService, type SandboxService } from '../support/service.js';
import { PAYMENT_FIELD } from '../../src/store/payment-hash.js';

const CART = { items: [{ sku: 'tea-01', quantity: 1 }], login_hint: 'user' };

/**
 * No secret in the logs (issue 5): a full run in ping mode without webhooks (approve, deny, ping
 * notifications, status reads with the client secret and the shop key); then every secret the run
 * used is looked for in every log line of the service, and none is found.
 */
describe('secrets never reach the log', () => {
  let sys: SandboxService;
  beforeAll(async () => {
    sys = await startTestService({ bank: { sandbox: { deliveryMode: 'ping', interval: 1 } } });
  });
  afterAll(async () => {
    await sys.close();
  });

  /** The bank keeps its backchannel requests in its Redis; the notification token is among their params. */
  async function notificationTokens(): Promise<string[]> {
    const found = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await sys.service.redis.scan(cursor, 'MATCH', `${sys.prefix}bank:*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const type = await sys.service.redis.type(key);
        const values =
          type === 'string'
            ? [await sys.service.redis.get(key)]
            : type === 'hash'
              ? Object.values(await sys.service.redis.hgetall(key))
              : [];
        for (const v of values)
          for (const m of (v ?? '').matchAll(/"client_notification_token":"([^"]+)"/g)) found.add(m[1]!);
      }
    } while (cursor !== '0');
    return [...found];
  }

  test('approve and deny in ping mode: no client secret, token, auth_req_id, shop key, notification token or encryption key in any log line', async () => {
    const secrets: Record<string, string[]> = { client_secret: [], access_token: [], auth_req_id: [] };
    const shop = { authorization: `Bearer ${sys.env.SHOP_API_KEY}` };

    // Approved: hold the bank's payment API back a moment to catch the sealed access token in Redis.
    await sys.bank.failNextPayments(1000);
    const approved = (
      await api(sys.url, 'POST', '/checkout', { body: CART, headers: { 'idempotency-key': 'secret-run-1' } })
    ).json;
    const arid1 = await sys.service.redis.hget(sys.service.keys.payment(approved.id), PAYMENT_FIELD.authReqId);
    const req1 = await waitFor(async () =>
      (await sys.bank.pending('user')).find((p) => p.bindingMessage === approved.binding_message),
    );
    await sys.bank.approve(req1.id);
    const sealed = await waitFor(
      async () => sys.service.redis.hget(sys.service.keys.payment(approved.id), PAYMENT_FIELD.sealedAccessToken),
      15_000,
      'the sealed token',
    );
    secrets.access_token!.push(open(sealed, sys.config.tokenEncryptionKeys, `${approved.id}/token`));
    await sys.bank.failNextPayments(0);
    await waitForStatus(sys.url, approved.id, approved.client_secret, ['succeeded'], 20_000);

    // Denied.
    const denied = (await api(sys.url, 'POST', '/checkout', { body: CART })).json;
    const arid2 = await sys.service.redis.hget(sys.service.keys.payment(denied.id), PAYMENT_FIELD.authReqId);
    const req2 = await waitFor(async () =>
      (await sys.bank.pending('user')).find((p) => p.bindingMessage === denied.binding_message),
    );
    await sys.bank.deny(req2.id);
    await waitForStatus(sys.url, denied.id, denied.client_secret, ['failed'], 20_000);

    // Reads with every kind of credential, and a wrong notification token.
    await api(sys.url, 'GET', `/payments/${approved.id}`, {
      headers: { authorization: `Bearer ${approved.client_secret}` },
    });
    await api(
      sys.url,
      'GET',
      `/payments/${denied.id}/events?client_secret=${encodeURIComponent(denied.client_secret)}`,
    );
    await api(sys.url, 'GET', `/payments/${denied.id}`, { headers: shop });
    const notify = await notificationTokens();
    expect(notify.length).toBeGreaterThanOrEqual(2);
    await api(sys.url, 'POST', '/ciba/notify', {
      body: { auth_req_id: arid1 },
      headers: { authorization: `Bearer ${notify[0]!}x` },
    });

    secrets.client_secret!.push(approved.client_secret, denied.client_secret);
    secrets.auth_req_id!.push(arid1!, arid2!);
    secrets.shop_key = [sys.env.SHOP_API_KEY!];
    secrets.notification_token = notify;
    secrets.token_encryption_key = [
      sys.env.TOKEN_ENCRYPTION_KEY!,
      ...sys.config.tokenEncryptionKeys.map((k) => k.toString('hex')),
    ];
    secrets.bank_client_key = [(await import('node:fs')).readFileSync(sys.certs.clientKey, 'utf8').split('\n')[1]!];

    const log = sys.logs.join('\n');
    expect(sys.logs.length).toBeGreaterThan(10);
    expect(log).toContain(approved.id); // the log is about these payments
    const leaks = Object.entries(secrets).flatMap(([name, values]) =>
      values.filter((v) => v.length >= 8 && log.includes(v)).map(() => name),
    );
    expect(leaks).toEqual([]);
    console.log(
      `secrets: ${sys.logs.length} log lines checked for ${Object.values(secrets).flat().length} secrets (${Object.keys(secrets).join(', ')})`,
    );
  }, 60_000);
});
