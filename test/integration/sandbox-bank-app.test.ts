import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, type Agent } from 'undici';
import { ensureDevCertificates } from '../../src/sandbox/certs.js';
import { waitFor } from '../support/api.js';
import { deleteKeysWithPrefix } from '../support/redis.js';
import { mtlsAgent } from '../support/system.js';
import type { DevCertificates } from '../../src/sandbox/certs.js';
import { startSandboxBank } from '../../src/sandbox/bank.js';
import type { SandboxBank } from '../../src/sandbox/bank.js';

/** The bank app's (the phone's) history of decided requests: what, how much, how it ended, and when. */

const REDIS_URL = 'redis://127.0.0.1:6379';
const CLIENT_ID = 'cibaConformance';

let dir: string;
let certs: DevCertificates;
let prefix: string;
let bank: SandboxBank;
let client: Agent;

async function bcAuthorize(bindingMessage: string, amount: string, requestedExpiry = '120'): Promise<number> {
  const res = await request(`${bank.issuer}/backchannel`, {
    method: 'POST',
    dispatcher: client,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      client_id: CLIENT_ID,
      scope: 'openid',
      login_hint: 'user',
      binding_message: bindingMessage,
      requested_expiry: requestedExpiry,
      authorization_details: JSON.stringify([
        {
          type: 'payment_initiation',
          instructedAmount: { currency: 'EUR', amount },
          creditorName: 'Demo Tea Shop',
          creditorAccount: { iban: 'DE89370400440532013000' },
        },
      ]),
    }).toString(),
  });
  await res.body.dump();
  return res.statusCode;
}

async function pendingId(bindingMessage: string): Promise<string> {
  const found = (await bank.pending('user')).find((p) => p.bindingMessage === bindingMessage);
  if (found === undefined) throw new Error(`no pending ${bindingMessage}`);
  return found.id;
}

async function signedInHome(): Promise<string> {
  const login = await request(`${bank.appUrl}login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'login=user&password=password&next=%2F',
  });
  await login.body.dump();
  const cookie = String(login.headers['set-cookie']).split(';')[0] ?? '';
  const home = await request(bank.appUrl, { headers: { cookie } });
  expect(home.statusCode).toBe(200);
  return home.body.text();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sandbox-app-'));
  certs = ensureDevCertificates(dir);
  prefix = `test:sandbox-app:${randomBytes(6).toString('hex')}:`;
  bank = await startSandboxBank({
    certs,
    redisUrl: REDIS_URL,
    redisPrefix: prefix,
    interval: 1,
    clients: [{ clientId: CLIENT_ID, authMethod: 'tls_client_auth', deliveryMode: 'poll' }],
    log: () => undefined,
  });
  client = mtlsAgent(certs, { cert: certs.clientCert, key: certs.clientKey });
});

afterAll(async () => {
  await bank.close();
  await client.close();
  await deleteKeysWithPrefix(prefix, REDIS_URL);
  rmSync(dir, { recursive: true, force: true });
});

describe('sandbox bank app: history', () => {
  test('when requests were approved, denied and expired, then the history lists each with merchant, amount, status and time', async () => {
    expect(await bcAuthorize('HI-APP', '12.90')).toBe(200);
    expect(await bcAuthorize('HI-DENY', '7.50')).toBe(200);
    expect(await bcAuthorize('HI-EXP', '3.00', '1')).toBe(200);
    expect(await bcAuthorize('HI-OPEN', '1.00')).toBe(200);
    const approvedAt = Date.now();
    await bank.approve(await pendingId('HI-APP'));
    await bank.deny(await pendingId('HI-DENY'));
    // HI-EXP asked for 1 s: wait until the bank itself no longer holds it as pending.
    await waitFor(
      async () => !(await bank.pending('user')).some((r) => r.bindingMessage === 'HI-EXP'),
      5000,
      'HI-EXP to expire',
    );

    const html = await signedInHome();
    const history = /<ul class="history">([\s\S]*?)<\/ul>/.exec(html)?.[1] ?? '';
    const items = history.split('<li>').slice(1);
    const item = (code: string): string => items.find((i) => i.includes(`<code>${code}</code>`)) ?? '';

    expect(items).toHaveLength(3);
    expect(history).not.toContain('HI-OPEN');
    expect(item('HI-APP')).toContain('<strong>Demo Tea Shop</strong> · EUR 12.90');
    expect(item('HI-APP')).toContain('status-approved">approved<');
    expect(item('HI-DENY')).toContain('EUR 7.50');
    expect(item('HI-DENY')).toContain('status-denied">denied<');
    expect(item('HI-EXP')).toContain('EUR 3.00');
    expect(item('HI-EXP')).toContain('status-expired">expired<');

    const when = /<time datetime="([^"]+)">(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC<\/time>/.exec(item('HI-APP'));
    expect(when).not.toBeNull();
    // The decision time, not the request time: within a few seconds of the approval.
    expect(Math.abs(Date.parse(when?.[1] ?? '') - approvedAt)).toBeLessThan(3000);
    expect(when?.[2]).toBe(`${(when?.[1] ?? '').slice(0, 10)} ${(when?.[1] ?? '').slice(11, 19)}`);
    expect(item('HI-EXP')).toMatch(/<time datetime="[^"]+">/);
    // The pending one is still on top, not in the history.
    expect(html.indexOf('HI-OPEN')).toBeLessThan(html.indexOf('<ul class="history">'));
  });
});
