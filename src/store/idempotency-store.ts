import type { Clock } from '../clock.js';
import type { ClaimRef, IdempotencyClaim, IdempotencyStore } from '../payments/idempotency.js';
import type { Sealer } from '../payments/ports.js';
import { retryInBackground } from '../payments/backoff.js';
import { NO_WAIT, notReplicated, writeDurably, type DurablePipeline, type Durability } from './durable-write.js';
import type { Keys } from './keys.js';
import type { IdempotencyClaimReply, RedisClient } from './redis.js';

/** Stored responses are replayed for 24 h (issue 5); a noted claim is kept as long (idempotency-note-1.lua). */
const KEEP_SECONDS = 24 * 3600;
/** Background tries of a failed end: from 200 ms, doubling (with jitter) up to 5 s. */
const RETRY_BACKOFF = { baseMs: 200, maxMs: 5000 };

type NoteArgs = Parameters<RedisClient['idempotencyNote']>;

/**
 * `inFlightSeconds`: how long a claim holds before a crashed request's key can be taken again; it must
 * outlast the longest checkout (the bank call with all its timeouts), or a retry would run beside it.
 * The note is WAITed for `durability.replicas` (a lost note would let a retry create a second payment).
 * Stored bodies and noted client secrets are sealed with the token keys (the key name as associated
 * data): a 202 body holds the payment's client secret.
 */
export function createIdempotencyStore(deps: {
  redis: RedisClient;
  keys: Keys;
  inFlightSeconds: number;
  sealer: Sealer;
  clock: Clock;
  /** The note WAITs for `replicas` (as the payment store's money writes); none by default. */
  durability?: Durability;
  /** A claim note fewer than `durability.replicas` acknowledged in time (the checkout fails before the bank). */
  onNoteUnreplicated?: () => void;
}): IdempotencyStore {
  const { redis, keys, sealer } = deps;
  const durability = deps.durability ?? NO_WAIT;
  const holdMs = deps.inFlightSeconds * 1000;
  const nameOf = (claim: ClaimRef) => keys.idempotency(claim.scope, claim.key);
  return {
    async claim(claim, fingerprint) {
      const k = nameOf(claim);
      const reply = await redis
        .idempotencyClaim(k, fingerprint, deps.inFlightSeconds, claim.owner, deps.clock.now())
        .catch((err: unknown) => {
          releaseUnheard(() => redis.idempotencyRelease(k, claim.owner, 'unnoted'), Date.now() + holdMs);
          throw err;
        });
      return claimed(reply, (sealed) => sealer.open(sealed, k));
    },
    async note(claim, payment) {
      const k = nameOf(claim);
      const sealed = sealer.seal(payment.clientSecret, k);
      const args: NoteArgs = [k, claim.owner, payment.paymentId, sealed, KEEP_SECONDS];
      return noteReplicated(redis, args, durability, deps.onNoteUnreplicated);
    },
    async complete(claim, response) {
      const k = nameOf(claim);
      const sealed = sealer.seal(response.body, k);
      const store = async () =>
        (await redis.idempotencyComplete(
          k,
          claim.owner,
          response.status,
          sealed,
          response.location ?? '',
          KEEP_SECONDS,
        )) === 1;
      return endClaim(store, Date.now() + holdMs);
    },
    async release(claim) {
      const k = nameOf(claim);
      return endClaim(async () => (await redis.idempotencyRelease(k, claim.owner)) === 1, Date.now() + holdMs);
    },
  };
}

/** What idempotency-claim-1.lua answered, its sealed parts opened with `open`. */
function claimed(reply: IdempotencyClaimReply, open: (sealed: string) => string): IdempotencyClaim {
  switch (reply[0]) {
    case 'new':
    case 'in_flight':
    case 'mismatch':
      return { state: reply[0] };
    case 'unsettled':
      // Both parts of the note, or nothing to answer with (idempotency-claim-1.lua): a 409, not a 500.
      if (!reply[1] || !reply[2]) return { state: 'in_flight' };
      return { state: 'unsettled', noted: { paymentId: reply[1], clientSecret: open(reply[2]) } };
    case 'replay': {
      const [, status, sealedBody, location] = reply;
      return {
        state: 'replay',
        response: { status: Number(status), body: open(sealedBody ?? ''), location: location ? location : null },
      };
    }
  }
}

/**
 * idempotency-note-1.lua, WAITed for `durability.replicas`. Lost in a failover, the note would leave
 * the claim to expire with its hold while the bank pushes the payment, and a retry would create a
 * second one: with too few acknowledgements it throws, and the bank is not asked.
 */
async function noteReplicated(
  redis: RedisClient,
  args: NoteArgs,
  durability: Durability,
  onUnreplicated: (() => void) | undefined,
): Promise<boolean> {
  const write = {
    plain: () => redis.idempotencyNote(...args),
    queued: (p: DurablePipeline) => p.idempotencyNote(...args),
  };
  const { reply, kept } = await writeDurably(redis, args[0], write, durability);
  if (Number(reply) !== 1) return false;
  if (!kept) {
    onUnreplicated?.();
    throw notReplicated('claim note');
  }
  return true;
}

/** Freeing an unheard claim: soon at first (a reply lost at once), then every 10 s at most. */
const UNHEARD_BACKOFF = { baseMs: 200, maxMs: 10_000 };

/**
 * A claim whose caller heard a fault (a timeout, a closed connection) may have run, or may still run
 * for a request answered with that fault: left, it would block the key for the hold. So its owner's
 * claim is freed in the background (owner-checked: never a newer request's), and freeing is tried
 * until it frees one or the hold is over, as the claim may land long after a first try found
 * nothing: the cluster client sends a command that already timed out again once its node's
 * connection closes (test/integration/cluster-resend.test.ts), which in a failover is the node
 * timeout and an election later. About a dozen small calls per such claim, 10 s apart at most.
 * Never deleted when it holds a payment note (it took over a noted claim: deleting it would let a
 * retry create a second payment); that claim is made takeable at once, for the next retry to settle
 * (mode 'unnoted').
 */
function releaseUnheard(release: () => Promise<number>, untilMs: number): void {
  const step = async () => {
    if ((await release()) !== 1) throw new Error('no claim of this owner (yet)');
  };
  retryInBackground(step, untilMs, UNHEARD_BACKOFF);
}

/**
 * Runs an end of a claim; when it fails (a store fault: the primary died, a timeout), tries it again
 * in the background until it gets an answer or the claim's hold is over, and throws. Safe to send
 * again: the scripts act only on the caller's claim still in flight, so a try whose reply was lost
 * and a later one cannot free or overwrite a newer request's claim. Not for ever: after the hold a
 * plain claim expires by itself, and a noted one is taken over by the next request.
 */
async function endClaim(end: () => Promise<boolean>, untilMs: number): Promise<boolean> {
  try {
    return await end();
  } catch (err) {
    retryInBackground(end, untilMs, RETRY_BACKOFF);
    throw err;
  }
}
