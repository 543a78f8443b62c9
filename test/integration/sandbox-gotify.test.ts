import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, type Agent } from 'undici';
import { ensureDevCertificates } from '../../src/sandbox/certs.js';
import { waitFor } from '../support/api.js';
import { deleteKeysWithPrefix } from '../support/redis.js';
import { freePort, mtlsAgent } from '../support/system.js';
import type { DevCertificates } from '../../src/sandbox/certs.js';
import { startSandboxBank } from '../../src/sandbox/bank.js';
import type { GotifyOptions, SandboxBank } from '../../src/sandbox/bank.js';

/**
 * The sandbox bank's optional Gotify push (the reference tutorial's mobile notification), against
 * a real local HTTP server posing as Gotify, with bc-authorize over mTLS as the shop sends it.
 */

const REDIS_URL = 'redis://127.0.0.1:6379';
const CLIENT_ID = 'cibaConformance';
const TOKEN = `A${randomBytes(9).toString('base64url')}`;

interface Received {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Json {
  [key: string]: unknown;
}

let dir: string;
let certs: DevCertificates;
let client: Agent;
const prefixes: string[] = [];

function startFakeGotify(
  answer: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ method: req.method, url: req.url, headers: req.headers, body });
      answer(req, res);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received });
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
    server.closeAllConnections();
  });
}

/**
 * A port nobody listens on. From freePort, not a released listen(0) port: the bank started next
 * draws its own two ports from that pool and could get this one, and the push would then reach it.
 */
async function closedPortUrl(): Promise<string> {
  return `http://127.0.0.1:${String(await freePort())}`;
}

async function startBank(gotify: GotifyOptions, logLines: string[]): Promise<SandboxBank> {
  const prefix = `test:sandbox-gotify:${randomBytes(6).toString('hex')}:`;
  prefixes.push(prefix);
  return startSandboxBank({
    certs,
    redisUrl: REDIS_URL,
    redisPrefix: prefix,
    interval: 1,
    clients: [{ clientId: CLIENT_ID, authMethod: 'tls_client_auth', deliveryMode: 'poll' }],
    log: (line) => logLines.push(line),
    gotify,
  });
}

/** POST bc-authorize at the mTLS alias, as the shop does; returns the answer and how long it took. */
async function bcAuthorize(
  bank: SandboxBank,
  bindingMessage: string,
): Promise<{ status: number; body: Json; elapsedMs: number }> {
  const started = Date.now();
  const res = await request(`${bank.issuer}/backchannel`, {
    method: 'POST',
    dispatcher: client,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      client_id: CLIENT_ID,
      scope: 'openid',
      login_hint: 'user',
      binding_message: bindingMessage,
      requested_expiry: '120',
      authorization_details: JSON.stringify([
        {
          type: 'payment_initiation',
          instructedAmount: { currency: 'EUR', amount: '12.90' },
          creditorName: 'Demo Tea Shop',
          creditorAccount: { iban: 'DE89370400440532013000' },
        },
      ]),
    }).toString(),
  });
  const body = (await res.body.json()) as Json;
  return { status: res.statusCode, body, elapsedMs: Date.now() - started };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sandbox-gotify-'));
  certs = ensureDevCertificates(dir);
  client = mtlsAgent(certs, { cert: certs.clientCert, key: certs.clientKey });
});

afterAll(async () => {
  await client.close();
  for (const prefix of prefixes) await deleteKeysWithPrefix(prefix, REDIS_URL);
  rmSync(dir, { recursive: true, force: true });
});

describe('sandbox bank: Gotify push', () => {
  test('when a bc-authorize arrives, then Gotify receives one message with the key header and a link to approve', async () => {
    const gotify = await startFakeGotify((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":1}');
    });
    const logLines: string[] = [];
    // A base URL with a path and a trailing slash, as behind a reverse proxy.
    const bank = await startBank({ url: `${gotify.url}/gotify/`, token: TOKEN }, logLines);
    try {
      const { status, body } = await bcAuthorize(bank, 'GO-TF1');
      expect(status).toBe(200);
      await waitFor(() => gotify.received.length > 0, 5000, 'the push at Gotify');

      const pending = (await bank.pending('user')).find((p) => p.bindingMessage === 'GO-TF1');
      expect(pending).toBeDefined();
      expect(gotify.received).toHaveLength(1);
      const [message] = gotify.received;
      expect(message?.method).toBe('POST');
      expect(message?.url).toBe('/gotify/message');
      expect(message?.headers['x-gotify-key']).toBe(TOKEN);
      expect(message?.headers['content-type']).toMatch(/^application\/json/);
      const sent = JSON.parse(message?.body ?? '{}') as Json;
      expect(sent).toEqual({
        title: expect.stringContaining('EUR 12.90') as unknown,
        message: expect.stringContaining('GO-TF1') as unknown,
        priority: 8,
        extras: { 'client::notification': { click: { url: `${bank.appUrl}requests/${pending?.id ?? 'missing'}` } } },
      });
      // The bank app's own id only; the auth_req_id is the shop's bearer of the grant.
      expect(message?.body).not.toContain(body.auth_req_id as string);
      // The console notification line stays.
      expect(logLines.some((l) => l.includes('GO-TF1') && l.includes(`approve at ${bank.appUrl}requests/`))).toBe(true);
      expect(logLines.filter((l) => l.includes('gotify'))).toEqual([]);
    } finally {
      await bank.close();
      await closeServer(gotify.server);
    }
  });

  test('when Gotify is down, then bc-authorize still succeeds and one line without the token is logged', async () => {
    const logLines: string[] = [];
    const bank = await startBank({ url: await closedPortUrl(), token: TOKEN }, logLines);
    try {
      const { status, body } = await bcAuthorize(bank, 'GO-DOWN');
      expect(status).toBe(200);
      expect(typeof body.auth_req_id).toBe('string');
      await waitFor(() => logLines.some((l) => l.includes('gotify')), 5000, 'a gotify log line');
      const failures = logLines.filter((l) => l.includes('gotify'));
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatch(/^\[bank\] gotify push for request [\w-]+ failed: .*ECONNREFUSED/);
      expect(logLines.join('\n')).not.toContain(TOKEN);
    } finally {
      await bank.close();
    }
  });

  test('when Gotify never answers, then bc-authorize does not wait for it and the push times out', async () => {
    const gotify = await startFakeGotify(() => undefined);
    const logLines: string[] = [];
    const bank = await startBank({ url: gotify.url, token: TOKEN, timeoutMs: 1500 }, logLines);
    try {
      const { status, elapsedMs } = await bcAuthorize(bank, 'GO-HANG');
      expect(status).toBe(200);
      expect(elapsedMs).toBeLessThan(1500);
      await waitFor(() => logLines.some((l) => l.includes('gotify')), 5000, 'a gotify log line');
      expect(gotify.received).toHaveLength(1);
      expect(logLines.filter((l) => l.includes('gotify'))).toEqual([
        expect.stringMatching(/^\[bank\] gotify push for request [\w-]+ failed: timed out$/),
      ]);
    } finally {
      await bank.close();
      await closeServer(gotify.server);
    }
  });

  test('when Gotify refuses the token, then the HTTP status is logged without the token', async () => {
    const gotify = await startFakeGotify((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"Unauthorized"}');
    });
    const logLines: string[] = [];
    const bank = await startBank({ url: gotify.url, token: TOKEN }, logLines);
    try {
      expect((await bcAuthorize(bank, 'GO-401')).status).toBe(200);
      await waitFor(() => logLines.some((l) => l.includes('gotify')), 5000, 'a gotify log line');
      expect(logLines.filter((l) => l.includes('gotify'))).toEqual([
        expect.stringMatching(/^\[bank\] gotify push for request [\w-]+ failed: HTTP 401$/),
      ]);
      expect(logLines.join('\n')).not.toContain(TOKEN);
    } finally {
      await bank.close();
      await closeServer(gotify.server);
    }
  });

  test('when the Gotify URL holds credentials, then the sandbox refuses to start', async () => {
    await expect(startBank({ url: 'http://admin:pw@127.0.0.1:1', token: TOKEN }, [])).rejects.toThrow(
      /must not hold credentials/,
    );
  });
});
