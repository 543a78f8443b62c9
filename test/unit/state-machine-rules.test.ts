import { isTerminal, PAYMENT_STATUSES, TERMINAL_STATUSES } from '../../src/payments/payment.js';
import type { PaymentStatus } from '../../src/payments/payment.js';
import {
  canTransition,
  webhookEventType,
  NEXT_STATUSES,
  statusesLeadingTo,
} from '../../src/payments/state-machine-rules.js';

/** The rules written out by hand (DESIGN.md), independent of the table under test. */
const ALLOWED: readonly (readonly [PaymentStatus, PaymentStatus])[] = [
  ['pending_authorization', 'authorized'],
  ['pending_authorization', 'failed'],
  ['pending_authorization', 'canceled'],
  ['authorized', 'processing'],
  ['authorized', 'failed'],
  ['authorized', 'canceled'],
  ['processing', 'succeeded'],
  ['processing', 'failed'],
];

const allowedKey = new Set(ALLOWED.map(([from, to]) => `${from}->${to}`));
const ALL_PAIRS = PAYMENT_STATUSES.flatMap((from) => PAYMENT_STATUSES.map((to) => [from, to] as const));
const FORBIDDEN = ALL_PAIRS.filter(([from, to]) => !allowedKey.has(`${from}->${to}`));

describe('payment state machine rules', () => {
  test('the six statuses are known, three of them terminal', () => {
    expect([...PAYMENT_STATUSES].sort()).toEqual(
      ['authorized', 'canceled', 'failed', 'pending_authorization', 'processing', 'succeeded'].sort(),
    );
    expect([...TERMINAL_STATUSES].sort()).toEqual(['canceled', 'failed', 'succeeded']);
    expect(FORBIDDEN).toHaveLength(36 - ALLOWED.length);
  });

  test.each(ALLOWED)('when %s -> %s, then it is allowed', (from, to) => {
    expect(canTransition(from, to)).toBe(true);
  });

  test.each(FORBIDDEN)('when %s -> %s, then it is forbidden', (from, to) => {
    expect(canTransition(from, to)).toBe(false);
  });

  test.each([...TERMINAL_STATUSES])('when %s (terminal), then there is no way out', (status) => {
    expect(isTerminal(status)).toBe(true);
    expect(NEXT_STATUSES[status]).toEqual([]);
    for (const to of PAYMENT_STATUSES) expect(canTransition(status, to)).toBe(false);
  });

  test.each(PAYMENT_STATUSES.filter((s) => !TERMINAL_STATUSES.has(s)))(
    'when %s (not terminal), then some terminal status can follow',
    (status) => {
      expect(isTerminal(status)).toBe(false);
      expect(NEXT_STATUSES[status].some((to) => TERMINAL_STATUSES.has(to))).toBe(true);
    },
  );

  test('when processing, then it can no longer be canceled (the bank may be moving the money)', () => {
    expect(canTransition('processing', 'canceled')).toBe(false);
  });

  test('nothing leads back to pending_authorization, and no status follows itself', () => {
    expect(statusesLeadingTo('pending_authorization')).toEqual([]);
    for (const status of PAYMENT_STATUSES) expect(canTransition(status, status)).toBe(false);
  });

  test.each([
    ['authorized', ['pending_authorization']],
    ['processing', ['authorized']],
    ['succeeded', ['processing']],
    ['failed', ['pending_authorization', 'authorized', 'processing']],
    ['canceled', ['pending_authorization', 'authorized']],
  ] as const)('statusesLeadingTo(%s) is %j', (to, froms) => {
    expect(statusesLeadingTo(to).sort()).toEqual([...froms].sort());
  });
});

describe('webhookEventType', () => {
  test.each([
    ['pending_authorization', 'payment.pending_authorization'],
    ['authorized', 'payment.authorized'],
    ['succeeded', 'payment.succeeded'],
    ['failed', 'payment.failed'],
    ['canceled', 'payment.canceled'],
  ] as const)('when %s, then the event is %s', (status, type) => {
    expect(webhookEventType(status)).toBe(type);
  });

  test('when processing, then no event is announced', () => {
    expect(webhookEventType('processing')).toBeNull();
  });
});
