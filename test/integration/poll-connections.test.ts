import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { type Agent, buildConnector } from 'undici';
import { createBankAgent, pollConnectionsOf } from '../../src/ciba/bank-agent.js';
import { createPollConnections, type PollConnections } from '../../src/ciba/poll-connections.js';
import type { Config } from '../../src/config.js';
import { waitFor } from '../support/api.js';
import { testCertificates } from '../support/system.js';

/**
 * The token poll's own connections (issue 12.4) against a raw mTLS peer that answers byte for
 * byte what each test scripts: what is sent, how connections are shared and kept, and that a
 * request is never sent twice, whatever the bank does with the connection.
 */
const certs = testCertificates();
const PENDING = '{"error":"authorization_pending"}';
const pendingAnswer = (extra = '') =>
  `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${PENDING.length}\r\n${extra}\r\n${PENDING}`;

interface Received {
  socket: TLSSocket;
  connection: number;
  head: string;
  body: string;
}
type Responder = (req: Received) => void;

let server: Server;
let origin: URL;
let respond: Responder;
let received: Received[];
let connections: TLSSocket[];
const agents: Agent[] = [];

beforeAll(async () => {
  server = createServer(
    {
      key: readFileSync(certs.serverKey),
      cert: readFileSync(certs.serverCert),
      ca: readFileSync(certs.caCert),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket) => {
      const connection = connections.push(socket) - 1;
      let buffered = '';
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('latin1');
        for (;;) {
          const end = buffered.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buffered.slice(0, end);
          const length = Number(/\r\ncontent-length: (\d+)/.exec(head)?.[1] ?? 0);
          if (buffered.length < end + 4 + length) return;
          const req = { socket, connection, head, body: buffered.slice(end + 4, end + 4 + length) };
          buffered = buffered.slice(end + 4 + length);
          received.push(req);
          respond(req);
        }
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = new URL(`https://localhost:${(server.address() as AddressInfo).port}/token`);
});
beforeEach(() => {
  received = [];
  connections = [];
  respond = (req) => req.socket.write(pendingAnswer());
});
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
  for (const socket of connections) socket.destroy();
});
afterAll(
  () =>
    new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    }),
);

function pollsTo(bank: Partial<Config['bank']> = {}): PollConnections {
  const agent = createBankAgent({
    caCertFile: certs.caCert,
    clientCertFile: certs.clientCert,
    clientKeyFile: certs.clientKey,
    maxConnections: 2,
    pipelining: 1,
    timeoutMs: 2000,
    ...bank,
  } as Config['bank']);
  agents.push(agent);
  const polls = pollConnectionsOf(agent, origin);
  if (!polls) throw new Error('expected poll connections');
  return polls;
}

const HEADERS = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
const poll = (polls: PollConnections, id: string) =>
  polls.send(polls.requestHead('POST', '/token', HEADERS), `grant_type=x&auth_req_id=${id}`);
const copiesOf = (id: string) => received.filter((r) => r.body.endsWith(`auth_req_id=${id}`)).length;

describe('token poll connections', () => {
  test('when polls are sent, then each is one request with host, keep-alive, its headers and exact length', async () => {
    const answer = await poll(pollsTo(), 'ar_1');
    expect(answer).toMatchObject({ statusCode: 400, text: PENDING });
    expect(answer.headers['content-type']).toBe('application/json');
    expect(received).toHaveLength(1);
    expect(received[0]?.head.split('\r\n')).toEqual([
      'POST /token HTTP/1.1',
      `host: ${origin.host}`,
      'connection: keep-alive',
      'content-type: application/x-www-form-urlencoded',
      'accept: application/json',
      'content-length: 29',
    ]);
    expect(received[0]?.body).toBe('grant_type=x&auth_req_id=ar_1');
  });

  test('when the pipelining option is on, then undici carries the polls (no own connections)', () => {
    const agent = createBankAgent({
      caCertFile: certs.caCert,
      clientCertFile: certs.clientCert,
      clientKeyFile: certs.clientKey,
      maxConnections: 2,
      pipelining: 8,
      timeoutMs: 2000,
    } as Config['bank']);
    agents.push(agent);
    expect(pollConnectionsOf(agent, origin)).toBeUndefined();
  });

  test('when a header would break the request apart, then the request head is refused', () => {
    expect(() => pollsTo().requestHead('POST', '/token', { 'x-a': 'b\r\nx-injected: 1' })).toThrow(/invalid/);
    expect(() => pollsTo().requestHead('POST', '/token', { 'content-length': '5' })).toThrow(/invalid/);
  });

  test.each(['host', 'Transfer-Encoding', 'connection', 'expect', 'te', 'upgrade', 'keep-alive', 'trailer'])(
    'when the caller sets %s (framing or connection), then the request head is refused',
    (name) => {
      expect(() => pollsTo().requestHead('POST', '/token', { [name]: 'x' })).toThrow(/invalid/);
    },
  );

  test.each(['token', '/to ken', '/token\r\nx-injected: 1', '/tökén'])(
    'when the path is %j (not origin-form ASCII), then the request head is refused',
    (path) => {
      expect(() => pollsTo().requestHead('POST', path, HEADERS)).toThrow(/invalid/);
    },
  );

  test('when a header value has a latin1 character, then it is written as one byte (as undici does)', async () => {
    const polls = pollsTo();
    await polls.send(polls.requestHead('POST', '/token', { 'x-name': 'Jos\u00e9' }), 'a=1');
    expect(received[0]?.head).toContain('x-name: Jos\u00e9\r\n');
  });

  test('when the token endpoint is an IPv6 literal, then the connector gets the address without brackets', async () => {
    let hostname: string | undefined;
    const polls = createPollConnections({
      connect: (options, callback) => {
        hostname = options.hostname;
        callback(new Error('not connecting'), null);
      },
      origin: new URL('https://[::1]:8443/token'),
      connections: 1,
      timeoutMs: 1000,
      keepAliveMs: 1000,
      keepAliveMaxMs: 1000,
    });
    await expect(poll(polls, 'ar_v6')).rejects.toThrow('not connecting');
    expect(hostname).toBe('::1');
  });

  test('when ten polls come at once on two connections, then at most two are open, one poll in flight on each, every answer its own', async () => {
    const inFlight = new Map<number, number>();
    let most = 0;
    respond = (req) => {
      inFlight.set(req.connection, (inFlight.get(req.connection) ?? 0) + 1);
      most = Math.max(most, ...inFlight.values());
      const id = /auth_req_id=(\w+)/.exec(req.body)?.[1] ?? '';
      setTimeout(() => {
        inFlight.set(req.connection, (inFlight.get(req.connection) ?? 1) - 1);
        req.socket.write(`HTTP/1.1 400 x\r\ncontent-length: ${id.length}\r\n\r\n${id}`);
      }, 5);
    };
    const polls = pollsTo();
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => poll(polls, `ar_${i}`)));
    expect(answers.map((a) => a.text)).toEqual(Array.from({ length: 10 }, (_, i) => `ar_${i}`));
    expect(connections).toHaveLength(2);
    expect(most).toBe(1);
    expect(received).toHaveLength(10);
  });

  test('when the bank drops the connection before answering, then the poll fails and is never sent again', async () => {
    respond = (req) => req.socket.destroy();
    const polls = pollsTo();
    await expect(poll(polls, 'ar_drop')).rejects.toThrow();
    respond = (req) => req.socket.write(pendingAnswer());
    await expect(poll(polls, 'ar_next')).resolves.toMatchObject({ text: PENDING });
    expect(copiesOf('ar_drop')).toBe(1);
    expect(connections).toHaveLength(2);
  });

  test('when polls wait for a connection that breaks, then only the one in flight fails; the others are sent once each', async () => {
    let first = true;
    respond = (req) => {
      if (first) {
        first = false;
        req.socket.destroy();
      } else req.socket.write(pendingAnswer());
    };
    const polls = pollsTo({ maxConnections: 1 });
    const outcomes = await Promise.allSettled(['a', 'b', 'c'].map((id) => poll(polls, id)));
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    expect(['a', 'b', 'c'].map(copiesOf)).toEqual([1, 1, 1]);
  });

  test('when the bank answers with Connection: close, then the next poll opens a new connection', async () => {
    respond = (req) => req.socket.write(pendingAnswer('connection: close\r\n'));
    const polls = pollsTo();
    await poll(polls, 'ar_1');
    await poll(polls, 'ar_2');
    expect(connections).toHaveLength(2);
  });

  test('when the bank says nothing within the timeout, then the poll fails within about that time', async () => {
    respond = () => undefined;
    const polls = pollsTo({ timeoutMs: 300 });
    const started = Date.now();
    await expect(poll(polls, 'ar_slow')).rejects.toMatchObject({ code: 'BANK_TIMEOUT' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(copiesOf('ar_slow')).toBe(1);
  });

  test('when the body breaks off after the status, then the answer comes without text (the bank did answer)', async () => {
    respond = (req) => {
      req.socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"access');
      setTimeout(() => req.socket.destroy(), 20);
    };
    await expect(poll(pollsTo(), 'ar_cut')).resolves.toEqual({
      statusCode: 200,
      headers: { 'content-type': 'application/json', 'content-length': '100' },
      text: undefined,
    });
  });

  test('when the bank sends a token answer twice, 5 ms apart, then the poll queued behind it does not take the copy', async () => {
    const token = (id: string) => `{"access_token":"${id}"}`;
    respond = (req) => {
      const id = /auth_req_id=(\w+)/.exec(req.body)?.[1] ?? '';
      const answer = `HTTP/1.1 200 OK\r\ncontent-length: ${token(id).length}\r\n\r\n${token(id)}`;
      req.socket.setNoDelay(true); // the copy really 5 ms later, not held back by Nagle's algorithm
      if (id === 'ar_a') {
        req.socket.write(answer);
        setTimeout(() => req.socket.write(answer), 5);
      } else setTimeout(() => req.socket.write(answer), 15);
    };
    const polls = pollsTo({ maxConnections: 1 });
    const answers = await Promise.all([poll(polls, 'ar_a'), poll(polls, 'ar_b')]);
    expect(answers.map((a) => a.text)).toEqual([token('ar_a'), token('ar_b')]);
    expect(copiesOf('ar_b')).toBe(1);
    expect(connections).toHaveLength(2);
  });

  test('when the bank answers a byte at a time, then the poll still fails within 2 × the timeout', async () => {
    respond = (req) => {
      req.socket.write('HTTP/1.1 400 x\r\nx-slow: ');
      const drip = setInterval(() => {
        req.socket.write('a');
      }, 100);
      req.socket.on('close', () => {
        clearInterval(drip);
      });
    };
    const polls = pollsTo({ timeoutMs: 400 });
    const started = Date.now();
    await expect(poll(polls, 'ar_drip')).rejects.toMatchObject({ code: 'BANK_TIMEOUT' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  test('when a poll waits for a connection longer than the timeout, then it fails without ever being sent', async () => {
    respond = () => undefined;
    const polls = pollsTo({ maxConnections: 1, timeoutMs: 300 });
    const outcomes = await Promise.allSettled([poll(polls, 'ar_first'), poll(polls, 'ar_queued')]);
    expect(outcomes).toMatchObject([
      { status: 'rejected', reason: { code: 'BANK_TIMEOUT' } },
      { status: 'rejected', reason: { code: 'BANK_TIMEOUT' } },
    ]);
    expect(copiesOf('ar_queued')).toBe(0);
  });

  test('when a body framed by the close is cut by our timeout, then it is not taken as whole', async () => {
    respond = (req) => {
      req.socket.write('HTTP/1.1 400 x\r\ncontent-type: application/json\r\n\r\n{"error":"access_de');
    };
    await expect(poll(pollsTo({ timeoutMs: 300 }), 'ar_close')).resolves.toMatchObject({
      statusCode: 400,
      text: undefined,
    });
  });

  test('when an idle connection is past its keep-alive before the sweep comes, then a poll does not reuse it', async () => {
    const polls = createPollConnections({
      connect: buildConnector({
        ca: readFileSync(certs.caCert),
        cert: readFileSync(certs.clientCert),
        key: readFileSync(certs.clientKey),
        rejectUnauthorized: true,
      }),
      origin,
      connections: 2,
      timeoutMs: 4000, // the sweep every 500 ms
      keepAliveMs: 100,
      keepAliveMaxMs: 100,
    });
    try {
      await poll(polls, 'ar_1');
      const idleSince = Date.now();
      await waitFor(() => Date.now() - idleSince >= 150, 1000, '150 ms idle');
      await poll(polls, 'ar_2');
      expect(connections).toHaveLength(2);
    } finally {
      polls.close();
    }
  });

  test('when the bank answers what is not HTTP, then the poll fails (nothing read as an answer)', async () => {
    respond = (req) => req.socket.write('SSH-2.0-OpenSSH_9.6\r\n\r\n');
    await expect(poll(pollsTo(), 'ar_junk')).rejects.toMatchObject({ code: 'BANK_BAD_RESPONSE' });
  });

  test('when bytes arrive on an idle connection, then it is dropped and the next poll gets its own answer', async () => {
    const polls = pollsTo({ maxConnections: 1 });
    await poll(polls, 'ar_1');
    received[0]?.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}');
    await waitFor(() => received[0]?.socket.destroyed, 2000, 'the idle connection dropped');
    await expect(poll(polls, 'ar_2')).resolves.toMatchObject({ statusCode: 400, text: PENDING });
    expect(connections).toHaveLength(2);
  });

  test("when the bank's Keep-Alive timeout is near, then the idle connection is closed before the bank closes it", async () => {
    respond = (req) => req.socket.write(pendingAnswer('keep-alive: timeout=3\r\n'));
    const polls = pollsTo();
    await poll(polls, 'ar_1');
    // 3 s less the 2 s margin: closed after about 1 s idle, long before the bank would
    await waitFor(() => connections[0]?.destroyed, 2500, 'the idle connection closed');
    await poll(polls, 'ar_2');
    expect(connections).toHaveLength(2);
  });

  test('when the agent closes, then its poll connections close and later polls fail without being sent', async () => {
    const agent = createBankAgent({
      caCertFile: certs.caCert,
      clientCertFile: certs.clientCert,
      clientKeyFile: certs.clientKey,
      maxConnections: 2,
      pipelining: 1,
      timeoutMs: 2000,
    } as Config['bank']);
    const polls = pollConnectionsOf(agent, origin) as PollConnections;
    await poll(polls, 'ar_1');
    await agent.close();
    await waitFor(() => connections[0]?.destroyed, 2000, 'the poll connection closed');
    await expect(poll(polls, 'ar_2')).rejects.toMatchObject({ code: 'BANK_CLOSED' });
    expect(received).toHaveLength(1);
  });
});
