import { FAILURE_CODES, toPaymentView, type PaymentRecord } from '../../src/payments/payment.js';
import {
  decodeEventEntry,
  encodeEventEntry,
  eventBody,
  eventIdOf,
  type PaymentEvent,
} from '../../src/payments/event-log.js';
import { decodeRecord, encodeFields } from '../../src/store/payment-store.js';

const created = 1_764_079_267_412;
const record: PaymentRecord = {
  id: 'pay_abcdefghijklmnopqrst',
  status: 'pending_authorization',
  amount: 4170,
  currency: 'eur',
  items: [
    { sku: 'tea-01', quantity: 2, unitAmount: 1290 },
    { sku: 'mug-03', quantity: 1, unitAmount: 1590 },
  ],
  bindingMessage: 'K7P2-QX',
  expiresAt: created + 300_000,
  failureCode: null,
  createdAt: created,
  updatedAt: created,
  metadata: { order_id: 'ord_42', '10': 'ten', note: 'ünïcödé "quoted"' },
  secretHash: 'h',
  authReqId: 'arid-1',
  intervalMs: 5000,
  callbackUrl: 'https://shop.example/hooks',
  sealedAccessToken: null,
  accessTokenExpiresAt: null,
  bankPaymentId: null,
  bankCalledAt: null,
  reconcileSince: null,
  heldToken: null,
  attempts: 0,
};

/** As Redis holds it and reads it back (payment-store's encoding). */
function roundTrip(r: PaymentRecord): PaymentRecord {
  const decoded = decodeRecord(encodeFields(r).set, r.id);
  if (!decoded) throw new Error('not decodable');
  return decoded;
}

describe('payment events: log entries and rebuilt bodies', () => {
  test('an entry round-trips, with and without a failure code, its id derived from the payment and position', () => {
    const id = record.id;
    const events: PaymentEvent[] = [
      { eventId: eventIdOf(id, 1), status: 'pending_authorization', failureCode: null, at: created },
      { eventId: eventIdOf(id, 2), status: 'failed', failureCode: 'authorization_mismatch', at: created + 9 },
    ];
    events.forEach((e, i) => { expect(decodeEventEntry(encodeEventEntry(e), id, i + 1)).toEqual(e); });
    expect(encodeEventEntry(events[0] as PaymentEvent)).toBe('pmien8y8k');
    expect(encodeEventEntry(events[1] as PaymentEvent)).toBe('fmien8y8t authorization_mismatch');
    // The webhook-id keeps its shape (msg_ + 24 base32 characters), one per event.
    expect(eventIdOf(id, 1)).toBe('msg_abcdefghijklmnopqrstaaab');
    expect(eventIdOf(id, 33)).toBe('msg_abcdefghijklmnopqrstaabb');
    expect(eventIdOf(id, 2)).toMatch(/^msg_[a-z2-7]{24}$/);
    // Entries written before hold their own (random) id; the oldest spell the status out.
    const own = (e: PaymentEvent, eventId: string) => ({ ...e, eventId });
    expect(decodeEventEntry('abcdefghijklmnopqrstuvwx p - mien8y8k', id, 1)).toEqual(
      own(events[0] as PaymentEvent, 'msg_abcdefghijklmnopqrstuvwx'),
    );
    expect(decodeEventEntry('abcdefghijklmnopqrstuvwx pending_authorization - mien8y8k', id, 1)).toEqual(
      own(events[0] as PaymentEvent, 'msg_abcdefghijklmnopqrstuvwx'),
    );
    expect(decodeEventEntry('bcdefghijklmnopqrstuvwxy failed authorization_mismatch mien8y8t', id, 2)).toEqual(
      own(events[1] as PaymentEvent, 'msg_bcdefghijklmnopqrstuvwxy'),
    );
    const bad = [
      '',
      'p',
      'x1',
      'P1',
      'p1 nope',
      'p1 access_denied x',
      'abc paid - 1',
      'abc failed nope 1',
      'ABC failed - 1',
    ];
    for (const entry of bad) expect(decodeEventEntry(entry, id, 1)).toBeNull();
  });

  test('every entry fits a compact (listpack) hash value: at most 64 bytes', () => {
    const longest = encodeEventEntry({
      status: 'failed',
      failureCode: FAILURE_CODES.reduce((a, b) => (b.length > a.length ? b : a)),
      at: Date.UTC(2999, 0),
    });
    expect(longest.length).toBeLessThanOrEqual(64);
    expect(
      encodeEventEntry({
        status: 'pending_authorization',
        failureCode: null,
        at: Date.UTC(2999, 0),
      }).length,
    ).toBeLessThanOrEqual(64);
  });

  test('the body rebuilt from the stored record is the body the event had when it happened', () => {
    const first: PaymentEvent = { eventId: 'msg_a', status: 'pending_authorization', failureCode: null, at: created };
    const failedAt = created + 61_000;
    const last: PaymentEvent = { eventId: 'msg_b', status: 'failed', failureCode: 'access_denied', at: failedAt };
    const failed: PaymentRecord = {
      ...record,
      status: 'failed',
      failureCode: 'access_denied',
      updatedAt: failedAt,
      attempts: 3,
      authReqId: null,
    };
    // What the event body was when each event was stored (before this design).
    const then = (r: PaymentRecord, at: number) =>
      JSON.stringify({ type: `payment.${r.status}`, timestamp: new Date(at).toISOString(), data: toPaymentView(r) });

    // Rebuilt later from the record as Redis returns it, whatever happened to the payment since.
    expect(eventBody(roundTrip(failed), first).json).toBe(then(record, created));
    expect(eventBody(roundTrip(record), first).json).toBe(then(record, created));
    expect(eventBody(roundTrip(failed), last)).toEqual({ type: 'payment.failed', json: then(failed, failedAt) });
    // The same bytes on every call (webhook retries).
    expect(eventBody(roundTrip(failed), last).json).toBe(eventBody(roundTrip(failed), last).json);
  });
});
