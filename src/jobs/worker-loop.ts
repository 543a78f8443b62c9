import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { parseWorkItem } from '../payments/work-items.js';
import type { ClaimedItem, Scheduler } from './scheduler.js';

/**
 * What a handler wants next for its item: nothing more, or to run again at a time (ms); `followUp`:
 * it left other work due now, so the loop looks at once.
 */
export type HandlerResult = { done: true; followUp?: true } | { at: number };
export type Handler = (arg: string, item: ClaimedItem) => Promise<HandlerResult>;

export interface WorkerLoopOptions {
  scheduler: Scheduler;
  /** Keyed by the member's kind: `poll:pay_1` runs handlers.poll('pay_1'). */
  handlers: Record<string, Handler>;
  concurrency: number;
  clock: Clock;
  logger: Logger;
  /** Longest sleep between looks at the due set; wake-ups cut it short. */
  idleMs?: number;
  onClaimed?: (item: ClaimedItem, lateMs: number) => void;
  /**
   * Lease renewal (issue 11.5): every `renewEveryMs` the leases of all work in hand are renewed in one
   * call, so the lease itself can be short and a killed worker's work is taken over within about one
   * lease. An item is renewed for at most `maxHoldMs` (longer than its longest call chain), so a
   * handler that never settles cannot hold its payment forever. Without it, leases are not renewed.
   */
  renewal?: { renewEveryMs: number; maxHoldMs: number };
}

export interface WorkerLoop {
  start(): void;
  /** Nudges the loop to claim now (a wake-up message, a ping). */
  nudge(): void;
  /** Stops claiming and waits for work in hand, at most `timeoutMs`; unfinished leases expire and are taken over. */
  stop(timeoutMs: number): Promise<void>;
  inFlight(): number;
}

const MAX_BATCH = 500;
/** The pause after a failed claim (the store away or failing over). */
const CLAIM_RETRY_MS = 1000;

/** A loop's options and mutable state, shared by the steps below (one object per loop, no per-poll closures). */
interface Loop {
  options: WorkerLoopOptions;
  renewal: LeaseRenewal;
  idleMs: number;
  /** Shortest gap between claims after a completion (a trickle of completions should not cost a claim each). */
  minGapMs: number;
  running: boolean;
  active: number;
  timer: NodeJS.Timeout | null;
  timerAt: number;
  looking: boolean;
  /** A nudge came while a look was under way: its claim may have missed the new work, so look again at once. */
  nudged: boolean;
  idleWaiters: (() => void)[];
}

export function createWorkerLoop(options: WorkerLoopOptions): WorkerLoop {
  const idleMs = options.idleMs ?? 50;
  const loop: Loop = {
    options,
    renewal: createLeaseRenewal(options),
    idleMs,
    minGapMs: Math.min(10, idleMs),
    running: false,
    active: 0,
    timer: null,
    timerAt: 0,
    looking: false,
    nudged: false,
    idleWaiters: [],
  };
  return {
    start() {
      loop.running = true;
      loop.renewal.start();
      schedule(loop, 0);
    },
    nudge() {
      nudge(loop);
    },
    stop: (timeoutMs) => stopLoop(loop, timeoutMs),
    inFlight: () => loop.active,
  };
}

async function runItem(loop: Loop, item: ClaimedItem): Promise<void> {
  const { scheduler, handlers, logger } = loop.options;
  const parsed = parseWorkItem(item.member);
  const handler = parsed ? handlers[parsed.kind] : undefined;
  try {
    if (!parsed || !handler) {
      logger.error({ member: item.member }, 'no handler for work item; dropped');
      await scheduler.complete(item.member);
      return;
    }
    const result = await handler(parsed.arg, item);
    // The follow-up is already due in Redis: claim it while this item settles (a ping's reaction
    // time is token → submit → succeeded, and each hop would otherwise wait out minGapMs).
    if ('followUp' in result) nudge(loop);
    const renewing = loop.renewal.release(item); // the fencing token may have moved while the handler ran
    if (renewing) await renewing;
    if ('done' in result) await scheduler.complete(item.member, item.leaseUntil);
    else await scheduler.reschedule(item.member, result.at, item.leaseUntil);
  } catch (err) {
    loop.renewal.drop(item);
    // The lease stays: it expires and the item is tried again, by this or another worker.
    logger.error({ err, kind: parsed?.kind }, 'work item failed; its lease will expire and be retried');
  } finally {
    const wasFull = loop.active === loop.options.concurrency;
    loop.active--;
    if (loop.active === 0) for (const w of loop.idleWaiters.splice(0)) w();
    // A finished item often left follow-up work due now (the payment submit after a token), so look
    // again soon; `minGapMs` keeps a trickle of completions from costing one claim each.
    if (loop.running) schedule(loop, wasFull ? 2 : loop.minGapMs);
  }
}

/** Read through a call: `running` changes while a claim is awaited. */
const stopped = (loop: Loop): boolean => !loop.running;
/** Read through a call too: `nudged` is set while a claim is awaited. */
const nudgedMeanwhile = (loop: Loop): boolean => loop.nudged;

async function look(loop: Loop): Promise<void> {
  if (!loop.running || loop.looking) return;
  const { scheduler, concurrency, clock, logger } = loop.options;
  loop.looking = true;
  loop.nudged = false;
  let delay = loop.idleMs;
  let claimFailed = false;
  try {
    const free = concurrency - loop.active;
    if (free > 0) {
      const { items, nextDueAt, more } = await scheduler.claim(Math.min(free, MAX_BATCH));
      if (stopped(loop)) {
        // Stopped while claiming: hand the items back, due when they were, instead of leaving leases to expire.
        await Promise.all(items.map((item) => scheduler.reschedule(item.member, item.dueAt, item.leaseUntil)));
        return;
      }
      const now = clock.now();
      for (const item of items) {
        loop.active++;
        loop.renewal.hold(item, now);
        loop.options.onClaimed?.(item, now - item.dueAt);
        void runItem(loop, item);
      }
      if (more) delay = 0;
      // Not before `minGapMs`: under a steady trickle of due items, one claim per item would cost a
      // Redis round trip each; a few milliseconds of patience batch them (ping wake-ups skip this).
      else if (nextDueAt !== null) delay = Math.max(loop.minGapMs, Math.min(loop.idleMs, nextDueAt - now));
    }
  } catch (err) {
    logger.warn({ err }, 'claiming work failed; trying again shortly');
    delay = CLAIM_RETRY_MS;
    claimFailed = true;
  } finally {
    loop.looking = false;
  }
  // A store that just failed a claim gets its pause even when wake-ups keep coming.
  if (nudgedMeanwhile(loop) && !claimFailed) delay = 0;
  if (loop.active < concurrency) schedule(loop, delay); // schedule() does nothing once stopped
}

/** Looks now; a look under way when the nudge comes is followed by another one at once. */
function nudge(loop: Loop): void {
  loop.nudged = true;
  schedule(loop, 0);
}

/** Looks again after `delay` ms, unless a look is already planned sooner. */
function schedule(loop: Loop, delay: number): void {
  if (!loop.running) return;
  const at = Date.now() + delay;
  if (loop.timer) {
    if (loop.timerAt <= at) return;
    clearTimeout(loop.timer);
  }
  loop.timerAt = at;
  loop.timer = setTimeout(() => {
    loop.timer = null;
    void look(loop);
  }, delay);
}

async function stopLoop(loop: Loop, timeoutMs: number): Promise<void> {
  loop.running = false;
  if (loop.timer) clearTimeout(loop.timer);
  // A claim in progress hands its items back (see look); let it finish before the connection closes.
  const until = Date.now() + timeoutMs;
  while (loop.looking && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  if (loop.active > 0) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.max(0, until - Date.now()));
      loop.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
    loop.idleWaiters = [];
  }
  // Work still in hand past the budget is no longer renewed: its leases expire and are taken over.
  loop.renewal.stop();
}

interface LeaseRenewal {
  start(): void;
  stop(): void;
  hold(item: ClaimedItem, now: number): void;
  /**
   * Stops renewing an item about to be settled; a renewal in flight is returned to be awaited, so
   * `leaseUntil` is current (nearly always none: no promise per item then).
   */
  release(item: ClaimedItem): Promise<void> | null;
  drop(item: ClaimedItem): void;
}

function createLeaseRenewal(options: WorkerLoopOptions): LeaseRenewal {
  const { scheduler, clock, logger, renewal } = options;
  const held = new Map<ClaimedItem, number>(); // item → when it was claimed
  let timer: NodeJS.Timeout | null = null;
  let inFlight: Promise<void> | null = null;

  async function renewHeld(): Promise<void> {
    const now = clock.now();
    const items: ClaimedItem[] = [];
    for (const [item, claimedAt] of held) {
      if (renewal && now - claimedAt <= renewal.maxHoldMs) items.push(item);
      else {
        held.delete(item);
        logger.error({ member: item.member }, 'work held past WORKER_MAX_HOLD_MS; its lease is left to expire');
      }
    }
    if (items.length === 0) return;
    try {
      for (const item of await scheduler.renew(items)) {
        held.delete(item);
        logger.warn({ member: item.member }, 'lease lost while in hand; another worker took the item over');
      }
    } catch (err) {
      // Tried again at the next tick; a lease lasts about three ticks.
      logger.warn({ err }, 'renewing leases failed');
    }
  }

  return {
    start() {
      if (!renewal || timer) return;
      timer = setInterval(() => {
        if (inFlight || held.size === 0) return;
        inFlight = renewHeld().finally(() => {
          inFlight = null;
        });
      }, renewal.renewEveryMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
    hold(item, now) {
      if (renewal) held.set(item, now);
    },
    release(item) {
      held.delete(item);
      return inFlight;
    },
    drop(item) {
      held.delete(item);
    },
  };
}
