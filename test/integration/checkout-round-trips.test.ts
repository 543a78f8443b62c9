import { jest } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import type { Agent } from 'undici';
import { createBankAgent } from '../../src/ciba/bank-agent.js';
import { createStateMachine } from '../../src/payments/state-machine.js';
import { ensureDevCertificates } from '../../src/sandbox/certs.js';
import { createKeys } from '../../src/store/keys.js';
import { createPaymentListIndex } from '../../src/store/payment-list-index.js';
import { createPaymentStore } from '../../src/store/payment-store.js';
import { createStoreClient } from '../../src/store/redis.js';
import { createTestStoreClient, deleteKeysWithPrefix, testStoreTarget } from '../support/redis.js';
import { pendingTestPayment } from '../support/payments.js';
import { startScriptedOp, type ScriptedOp } from '../support/scripted-op.js';
import { uniquePrefix } from '../support/system.js';

/**
 * What a checkout costs on the way out (issue 12.4, checkout CPU and latency): on one Redis a new
 * payment and its list entry are one round trip, the entry still first; the backchannel request is
 * written at once, not held for the end of the turn like the pipelined token polls.
 */
describe('a new payment on one Redis', () => {
  const prefix = uniquePrefix('roundtrips');
  const redis = createTestStoreClient();
  const keys = createKeys(prefix);
  const clock = { now: () => Date.now() };
  const store = createPaymentStore({ redis, keys, retentionSeconds: 3600 });
  const machine = createStateMachine({ store, clock, webhookTargets: { global: false } });
  const index = createPaymentListIndex({ redis, keys, retentionSeconds: 3600 });

  afterAll(async () => {
    await deleteKeysWithPrefix(prefix);
    redis.disconnect();
  });

  const create = async () => {
    const payment = pendingTestPayment(clock.now());
    expect(await machine.create(payment, { member: `poll:${payment.id}`, at: clock.now() + 60_000 })).toBe('ok');
    return payment;
  };

  test('when a payment is created, then its list entry and the payment go out before either answer, the entry first', async () => {
    await create(); // the scripts are loaded on this connection once
    const events: string[] = [];
    const original = redis.sendCommand.bind(redis);
    const send = jest.spyOn(redis, 'sendCommand').mockImplementation((command, stream) => {
      const label = command.args.some((a) => String(a).includes('paylist')) ? 'list' : 'payment';
      events.push(`sent ${label}`);
      command.promise.then(
        () => events.push(`answered ${label}`),
        () => events.push(`failed ${label}`),
      );
      return original(command, stream);
    });
    let payment;
    try {
      payment = await create();
    } finally {
      send.mockRestore();
    }
    expect(events.filter((e) => e.startsWith('sent'))).toEqual(['sent list', 'sent payment']);
    expect(events.indexOf('sent payment')).toBeLessThan(events.indexOf('answered list'));
    expect(events).not.toContain('failed list');
    expect(await store.get(payment.id)).toMatchObject({ id: payment.id, status: 'pending_authorization' });
    const listed = await index.scan({
      cursor: null,
      direction: 'older',
      createdGte: null,
      createdLt: null,
      count: 10,
    });
    expect(listed).toContain(payment.id);
  });

  test("when checkouts are created together on the service's client, then their writes go out in one batch", async () => {
    // The service's store client auto-pipelines: a pipeline of each checkout's own was a socket write each.
    const piped = createStoreClient(testStoreTarget(), { autoPipelining: true });
    const pipedMachine = createStateMachine({
      store: createPaymentStore({ redis: piped, keys, retentionSeconds: 3600 }),
      clock,
      webhookTargets: { global: false },
    });
    const createOn = async () => {
      const payment = pendingTestPayment(clock.now());
      expect(await pipedMachine.create(payment, { member: `poll:${payment.id}`, at: clock.now() + 60_000 })).toBe('ok');
      return payment;
    };
    try {
      await createOn(); // connected, the scripts loaded on this connection
      const write = jest.spyOn(piped.stream, 'write');
      let payments;
      try {
        payments = await Promise.all(Array.from({ length: 5 }, createOn));
        expect(write).toHaveBeenCalledTimes(1);
      } finally {
        write.mockRestore();
      }
      const listed = await index.scan({
        cursor: null,
        direction: 'older',
        createdGte: null,
        createdLt: null,
        count: 20,
      });
      for (const payment of payments) {
        expect(listed).toContain(payment.id);
        expect(await store.get(payment.id)).toMatchObject({ status: 'pending_authorization' });
      }
    } finally {
      piped.disconnect();
    }
  });
});

describe('the bank agent', () => {
  let op: ScriptedOp;
  let agent: Agent;

  beforeAll(async () => {
    op = await startScriptedOp({ certs: ensureDevCertificates(mkdtempSync(join(tmpdir(), 'round-trips-certs-'))) });
    agent = createBankAgent(op.configFor({ pipelining: 8 }).bank);
  });
  afterAll(async () => {
    await agent.close();
    await op.close();
  });

  /** Sends a request and reports which bank sockets are still corked one turn later. */
  async function corkedOneTurnAfter(options: { idempotent: boolean }): Promise<number> {
    const origin = new URL(op.issuer).origin;
    // A connection to hold: the coalescer corks only open sockets.
    await (await agent.request({ origin, path: '/warm-up', method: 'GET' })).body.dump();
    const cork = jest.spyOn(TLSSocket.prototype, 'cork');
    try {
      const answer = agent.request({
        origin,
        path: '/bc-authorize-like',
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'login_hint=user',
        ...(options.idempotent ? { idempotent: true, blocking: false } : {}),
      });
      await new Promise((resolve) => setImmediate(resolve));
      const stillCorked = (cork.mock.contexts as TLSSocket[]).filter((s) => s.writableCorked > 0).length;
      await (await answer).body.dump();
      return stillCorked;
    } finally {
      cork.mockRestore();
    }
  }

  test('when a request cannot be pipelined (a backchannel request), then it is written at once, no socket held', async () => {
    expect(await corkedOneTurnAfter({ idempotent: false })).toBe(0);
  });

  test('when a request can be pipelined (a token poll), then the sockets are still held to gather the writes', async () => {
    expect(await corkedOneTurnAfter({ idempotent: true })).toBeGreaterThan(0);
  });
});
