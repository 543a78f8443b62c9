import { jest } from '@jest/globals';
import type { Clock } from '../../src/clock.js';
import type { Logger } from '../../src/logger.js';
import type { ClaimResult, Scheduler } from '../../src/jobs/scheduler.js';
import { createWorkerLoop, type HandlerResult, type WorkerLoop } from '../../src/jobs/worker-loop.js';

/**
 * When the loop claims (pure logic: a scripted scheduler and jest's fake timers). A ping's reaction
 * time is token → submit → succeeded, so a step that leaves work due now, and a wake-up that comes
 * while a claim is under way, must lead to a claim at once, not after the loop's usual gaps.
 */

const NOTHING: ClaimResult = { items: [], nextDueAt: null, more: false };

function scriptedScheduler() {
  const claims: number[] = [];
  const answers: (() => Promise<ClaimResult>)[] = [];
  const scheduler = {
    claim: jest.fn(() => {
      claims.push(Date.now());
      return (answers.shift() ?? (() => Promise.resolve(NOTHING)))();
    }),
    complete: jest.fn(() => Promise.resolve()),
    reschedule: jest.fn(() => Promise.resolve()),
    renew: jest.fn(() => Promise.resolve([])),
  } as unknown as Scheduler;
  return { scheduler, claims, answers };
}

const silent = { error: () => undefined, warn: () => undefined } as unknown as Logger;
const clock: Clock = { now: () => Date.now() };

/** Lets the promise chains of a handler and a settle run (fake timers do not run microtasks by themselves). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('worker loop: when it claims again', () => {
  let loop: WorkerLoop | null = null;
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(async () => {
    const stopping = loop?.stop(0);
    await jest.advanceTimersByTimeAsync(10);
    await stopping;
    loop = null;
    jest.useRealTimers();
  });

  function startWith(result: HandlerResult) {
    const s = scriptedScheduler();
    s.answers.push(() =>
      Promise.resolve({
        items: [{ member: 'poll:pay_1', dueAt: Date.now(), leaseUntil: Date.now() + 30_000 }],
        nextDueAt: null,
        more: false,
      }),
    );
    loop = createWorkerLoop({
      scheduler: s.scheduler,
      handlers: { poll: () => Promise.resolve(result) },
      concurrency: 8,
      clock,
      logger: silent,
      idleMs: 50,
    });
    loop.start();
    return s;
  }

  test('a step that left work due now (followUp) is followed by a claim at once', async () => {
    const s = startWith({ done: true, followUp: true });
    await jest.advanceTimersByTimeAsync(0);
    await settle();
    await jest.advanceTimersByTimeAsync(1); // a timer of 0 ms set inside a tick runs 1 ms later, as in Node
    expect(s.claims).toHaveLength(2);
    expect((s.claims[1] ?? 0) - (s.claims[0] ?? 0)).toBeLessThanOrEqual(1);
  });

  test('a step without follow-up waits the gap between claims (a trickle of completions is batched)', async () => {
    const s = startWith({ done: true });
    await jest.advanceTimersByTimeAsync(0);
    await settle();
    await jest.advanceTimersByTimeAsync(5);
    expect(s.claims).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(10);
    expect(s.claims).toHaveLength(2);
    expect((s.claims[1] ?? 0) - (s.claims[0] ?? 0)).toBeGreaterThanOrEqual(10);
  });

  test('a wake-up during a claim is followed by another claim at once, not after the idle sleep', async () => {
    const s = scriptedScheduler();
    let answer: (r: ClaimResult) => void = () => undefined;
    s.answers.push(() => new Promise<ClaimResult>((resolve) => (answer = resolve)));
    loop = createWorkerLoop({
      scheduler: s.scheduler,
      handlers: {},
      concurrency: 8,
      clock,
      logger: silent,
      idleMs: 50,
    });
    loop.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(s.claims).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(3);
    loop.nudge(); // the ping's wake-up: this claim may have read the due set before the ping moved the poll
    await jest.advanceTimersByTimeAsync(0);
    expect(s.claims).toHaveLength(1); // one claim at a time
    answer({ items: [], nextDueAt: Date.now() + 30_000, more: false });
    await settle();
    await jest.advanceTimersByTimeAsync(1);
    expect(s.claims).toHaveLength(2);
    expect((s.claims[1] ?? 0) - (s.claims[0] ?? 0)).toBeLessThanOrEqual(4);
  });
});
