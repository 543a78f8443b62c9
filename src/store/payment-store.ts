import { currentTraceparent } from '../tracing.js';
import type { Keys } from './keys.js';
import { createPaymentListIndex, type ListAddArgs } from './payment-list-index.js';
import { NO_WAIT, notReplicated, writeDurably, type DurablePipeline, type Durability } from './durable-write.js';
import { TransitionCode, UpdateCode, type RedisClient, type TransitionArgs } from './redis.js';
import type { PaymentRecord, PaymentStatus } from '../payments/payment.js';
import type { BankCallNote, PaymentStore, PollFields, TransitionRequest, TransitionResult } from '../payments/ports.js';
import {
  DEFAULT_INTERVAL_MS,
  decodeRecord,
  decodeSpentGrant,
  decodeStatus,
  encodeFields,
  PAYMENT_FIELD,
  partField,
  storedNames,
  storedStatus,
  TRACE_FIELDS,
} from './payment-hash.js';

export type { PaymentStore, PollFields, TransitionRequest, TransitionResult } from '../payments/ports.js';
export { decodeRecord, encodeFields } from './payment-hash.js';
export type { Durability } from './durable-write.js';

const FIELD = PAYMENT_FIELD;

/** The hash fields a token poll reads, in the order `decodePollFields` takes them (also read by the claim script). */
export const POLL_FIELDS: readonly string[] = [
  FIELD.status,
  FIELD.authReqId,
  partField(FIELD.authReqId, 1),
  FIELD.intervalMs,
  FIELD.expiresAt,
  FIELD.attempts,
  FIELD.amount,
  FIELD.currency,
  FIELD.bankConsentId,
  FIELD.heldToken,
  FIELD.spentGrant,
];

/** A poll's pace for the claim script: its interval field and default (a hash of an earlier version reads the default). */
export const POLL_PACE = { field: FIELD.intervalMs, defaultMs: DEFAULT_INTERVAL_MS } as const;

/**
 * The values of POLL_FIELDS (null where absent) as PollFields; null when they do not suffice and the
 * whole hash must be read: a long auth_req_id (in parts), or a hash an earlier version wrote (no `x`).
 */
export function decodePollFields(values: readonly (string | null | undefined)[]): PollFields | null {
  const [status, arid, arid1, interval, expiresAt, attempts, amount, currency, consent, held, spent] = values;
  // No status: the hash is gone, or (mid slot migration, after ASKING on the importing node) not
  // there yet. Either way the poller reads the whole payment itself, following the redirect.
  const current = decodeStatus(status);
  if (current === null || arid1 != null || expiresAt == null) return null;
  return {
    status: current,
    authReqId: arid ?? null,
    intervalMs: Number(interval ?? DEFAULT_INTERVAL_MS),
    expiresAt: Number(expiresAt),
    attempts: Number(attempts ?? 0),
    amount: Number(amount ?? 0),
    currency: currency ?? '',
    bankConsentId: consent ?? null,
    heldToken: held ?? null,
    spentGrant: decodeSpentGrant(spent),
  };
}

/**
 * What asynchronous replication can lose, and how each money step is closed (issue 12.2).
 *
 * A Redis primary (Redis Cluster, or any primary with replicas) acknowledges a write before any
 * replica has it. If it dies in that window, the replica promoted in its place goes on without the
 * write: the service saw "OK", the store forgot. For most writes that only repeats work (a poll, a
 * lease, a webhook attempt). For the writes money depends on, `WAIT <replicas> <timeoutMs>` follows
 * in the same round trip on the payment's node (WAIT counts every earlier write of the replication
 * stream, so one acknowledged WAIT covers all the payment's earlier writes too):
 *
 * - `authorized` (the sealed access token, issued by the bank once) and `processing`: WAITed; if
 *   lost, the payment is polled again or submitted again from `authorized` — no money has moved yet,
 *   because of the next rule.
 * - `bank_at`, written just before each bank payment call (`recordBankCall`): the call is made only
 *   when `durability.replicas` acknowledged it. Else no call: the worker backs off, the payment stays
 *   `processing`, an alarm is counted. So a failover never forgets that a call may have reached the
 *   bank, and a later refusal is settled by a reconciliation lookup, never read as a first attempt.
 * - `canceled`: WAITed, so the shop's 200 comes once a replica has it; a cancel lost with its
 *   primary would let the promoted replica submit the payment (a shortfall is only counted: the
 *   shop learns it through the payment's status, not the cancel's answer).
 * - `succeeded`: WAITed; if lost, the payment is back in `processing` with `bank_at` set: the same
 *   Idempotency-Key gets the bank's first answer, or a refusal leads to the lookup — never a second
 *   transfer, never `failed` for money that moved.
 *
 * A transition whose WAIT fell short is still done (it cannot be taken back); it is reported through
 * `onUnreplicated`. With `replicas` 0 (one Redis without replicas) nothing is WAITed: there is no
 * replica to promote, and only the loss of the Redis itself (persistence) loses writes.
 */
const DURABLE_STATUSES: ReadonlySet<PaymentStatus> = new Set(['authorized', 'processing', 'succeeded', 'canceled']);

function needsWait(request: TransitionRequest, durability: Durability): boolean {
  return durability.replicas > 0 && DURABLE_STATUSES.has(request.to);
}

/**
 * The mark of a payment id whose creation was in doubt and is now refused (void-payment-1.lua): no
 * status of any version, so decodeRecord reads no payment. Kept a day: far longer than any create
 * could still arrive (a command sent again, a node resuming).
 */
const VOID_STATUS = 'void';
const VOID_KEPT_SECONDS = 24 * 3600;

/** Tries of the list entry alone, after it failed beside a payment that was created. */
const RELIST_ATTEMPTS = 3;

/**
 * One Redis (no cluster): the list entry and the new payment sent together, one round trip instead
 * of two per checkout. One connection runs them in the order sent, so the entry is still in before
 * the payment. Two commands, not an explicit pipeline: the store client's auto-pipelining sends them
 * in the batch of everything else issued this turn, where a pipeline of their own would cost a
 * socket write per checkout. A batch is no transaction: the entry can fail (a wrong type, a script
 * flushed) while the payment is created, its poll due and the customer's phone already asked. Then
 * the checkout must not fail (its 5xx would hide a payment that can move money): the entry is tried
 * again alone, and if it still fails, `onUnlisted` tells the operator; the payment goes on unlisted.
 */
async function createListed(
  redis: RedisClient,
  listArgs: ListAddArgs,
  args: TransitionArgs,
  onUnlisted: ((error: unknown) => void) | undefined,
): Promise<TransitionResult> {
  const [listed, created] = await Promise.allSettled([redis.listAdd(...listArgs), redis.transition(...args)]);
  if (created.status === 'rejected') throw created.reason;
  if (listed.status === 'rejected') await relist(redis, listArgs, listed.reason, onUnlisted);
  return transitionResult(created.value);
}

async function relist(
  redis: RedisClient,
  listArgs: ListAddArgs,
  error: unknown,
  onUnlisted: ((error: unknown) => void) | undefined,
): Promise<void> {
  let last = error;
  for (let attempt = 1; attempt <= RELIST_ATTEMPTS; attempt++) {
    try {
      await redis.listAdd(...listArgs);
      return;
    } catch (err) {
      last = err;
    }
  }
  onUnlisted?.(last);
}

/** Runs transition-6.lua; a money transition with `durability.replicas` set waits for that many replicas. */
async function runTransition(
  redis: RedisClient,
  keys: Keys,
  request: TransitionRequest,
  args: TransitionArgs,
  durability: Durability,
  onUnreplicated: ((status: PaymentStatus) => void) | undefined,
): Promise<TransitionResult> {
  const write = { plain: () => redis.transition(...args), queued: (p: DurablePipeline) => p.transition(...args) };
  const waited = needsWait(request, durability) ? durability : NO_WAIT;
  const { reply, kept } = await writeDurably(redis, keys.payment(request.id), write, waited);
  const result = transitionResult(Number(reply));
  if (result === 'ok' && !kept) onUnreplicated?.(request.to);
  return result;
}

export function createPaymentStore(deps: {
  redis: RedisClient;
  keys: Keys;
  retentionSeconds: number;
  durability?: Durability;
  /** A money transition a primary took but fewer than `durability.replicas` acknowledged in time. */
  onUnreplicated?: (status: PaymentStatus) => void;
  /** A void mark fewer than `durability.replicas` acknowledged in time (settling counts it as cannot-tell). */
  onVoidUnreplicated?: () => void;
  /** A new payment created on one Redis whose list entry failed even when tried again: GET /payments misses it. */
  onUnlisted?: (id: string, error: unknown) => void;
}): PaymentStore {
  const { redis, keys, retentionSeconds } = deps;
  const durability = deps.durability ?? NO_WAIT;
  const list = createPaymentListIndex(deps);
  const get = async (id: string) => decodeRecord(await redis.hgetall(keys.payment(id)), id);
  return {
    get,
    getMany: (ids) => Promise.all(ids.map(get)),
    async getPollFields(id) {
      const values = await redis.hmget(keys.payment(id), ...POLL_FIELDS);
      const fields = decodePollFields(values);
      if (fields) return fields;
      const record = await get(id);
      return record ? pollFieldsOf(record) : { ...NO_POLL_FIELDS };
    },
    async update(id, fields, whileIn) {
      const { set, drop } = encodeFields(fields);
      const pairs = Object.entries(set).flat();
      // Never a plain HSET: after the payment expired it would leave an orphan hash without a TTL.
      const allowed = allowedStatusesArg(whileIn ?? []);
      return updateResult(await redis.update(keys.payment(id), allowed, pairs.length / 2, ...pairs, ...drop));
    },
    async transition(request) {
      const { set, drop } = encodeFields(
        { ...request.fields, status: request.to, updatedAt: request.now },
        { fresh: request.from === null },
      );
      if (request.from === null) {
        // The trace of the request creating it (POST /checkout); the worker's spans continue it.
        const traceparent = currentTraceparent();
        if (traceparent) set[TRACE_FIELDS[0]] = traceparent;
      }
      const args = transitionArgs(keys, request, { set, drop }, retentionSeconds);
      if (request.from !== null) return runTransition(redis, keys, request, args, durability, deps.onUnreplicated);
      // Listed before it exists: a crash in between leaves an entry GET /payments skips, never a
      // payment the list misses. Not in the script: in Redis Cluster the list is in another slot.
      const listArgs = list.addArgs(request.id, request.fields.createdAt ?? request.now, request.now);
      if (redis.isCluster || needsWait(request, durability)) {
        await redis.listAdd(...listArgs);
        return runTransition(redis, keys, request, args, durability, deps.onUnreplicated);
      }
      return createListed(redis, listArgs, args, (error) => deps.onUnlisted?.(request.id, error));
    },
    // A payment that ended or is gone gets no note, and so no bank call.
    recordBankCall: (id, at) => recordBankCall(redis, keys.payment(id), at, durability),
    async getTraceparent(id) {
      const [current, legacy] = await redis.hmget(keys.payment(id), ...TRACE_FIELDS);
      return current ?? legacy ?? null;
    },
    voidUnlessCreated: (id) => voidUnlessCreated(redis, keys.payment(id), id, durability, deps.onVoidUnreplicated),
  };
}

/**
 * PaymentStore.voidUnlessCreated: void-payment-1.lua, then the payment it found. A void mark is
 * WAITed for `durability.replicas`: lost in a failover, it would let the create (sent again, or
 * late) land on the promoted replica after the key was freed and a retry made a second payment. Too
 * few acknowledgements: the store cannot tell yet (it throws; the caller settles again later).
 */
async function voidUnlessCreated(
  redis: RedisClient,
  key: string,
  id: string,
  durability: Durability,
  onUnreplicated: (() => void) | undefined,
): Promise<PaymentRecord | null> {
  const args = [key, VOID_STATUS, VOID_KEPT_SECONDS] as const;
  const write = { plain: () => redis.voidPayment(...args), queued: (p: DurablePipeline) => p.voidPayment(...args) };
  const { reply, kept } = await writeDurably(redis, key, write, durability);
  if (Number(reply) === 1) {
    if (!kept) {
      onUnreplicated?.();
      throw notReplicated(`void mark of ${id}`);
    }
    return null;
  }
  const record = decodeRecord(await redis.hgetall(key), id);
  if (!record) throw new Error(`payment ${id} exists in a status this version cannot read`);
  return record;
}

/**
 * `bank_at` written with update-1.lua while the payment is `processing` (a worker whose lease was
 * taken over must not note a call on a payment reconciliation already settled), WAITed for the
 * required replicas (see Durability).
 */
async function recordBankCall(
  redis: RedisClient,
  key: string,
  at: number,
  durability: Durability,
): Promise<BankCallNote> {
  const args = [key, allowedStatusesArg(['processing']), 1, FIELD.bankCalledAt, String(at)] as const;
  const write = { plain: () => redis.update(...args), queued: (p: DurablePipeline) => p.update(...args) };
  const { reply, kept } = await writeDurably(redis, key, write, durability);
  return bankCallNote(Number(reply), kept);
}

function bankCallNote(code: number, replicated: boolean): BankCallNote {
  if (updateResult(code) !== 'ok') return 'not_processing';
  return replicated ? 'noted' : 'not_replicated';
}

/** Every answer of update-1.lua, as the answers of a transition: written, no payment, or not in an allowed status. */
const UPDATE_RESULTS: Record<UpdateCode, TransitionResult> = {
  [UpdateCode.Written]: 'ok',
  [UpdateCode.NoPayment]: 'not_found',
  [UpdateCode.WrongStatus]: 'conflict',
};

const updateResult = (code: number) => scriptResult(UPDATE_RESULTS, code, 'update-1.lua');

/** The statuses a script may find, each as its letter and as the name an earlier version wrote. */
function allowedStatusesArg(statuses: readonly PaymentStatus[]): string {
  return statuses.flatMap((s) => [storedStatus(s), s]).join(',');
}

/** Every answer of transition-6.lua, and what it means to the state machine. */
const TRANSITION_RESULTS: Record<TransitionCode, TransitionResult> = {
  [TransitionCode.Done]: 'ok',
  [TransitionCode.NotFound]: 'not_found',
  [TransitionCode.WrongStatus]: 'conflict',
};

const transitionResult = (code: number) => scriptResult(TRANSITION_RESULTS, code, 'transition-6.lua');

/** What a script's answer means, from its table of every answer; an answer not in it is a bug. */
function scriptResult(results: Record<number, TransitionResult>, code: number, script: string): TransitionResult {
  const result = (results as Partial<Record<number, TransitionResult>>)[code];
  if (result === undefined) throw new Error(`${script} answered ${code}`);
  return result;
}

function transitionArgs(
  keys: Keys,
  request: TransitionRequest,
  fields: { set: Record<string, string>; drop: string[] },
  retentionSeconds: number,
): TransitionArgs {
  const shard = keys.scheduleOf(request.id);
  // All of a payment's work items share its due bucket (store/keys.ts), the one the script changes.
  const due = keys.dueOf(request.id);
  return [
    keys.payment(request.id),
    due.key,
    shard.leases,
    shard.pinged,
    shard.dueDir,
    shard.legacyDue,
    // The stored status is a letter, or a name an earlier version wrote: both are allowed.
    request.from === null ? '-' : allowedStatusesArg(request.from),
    JSON.stringify(fields.set),
    fields.drop.join(','),
    request.event?.entry ?? '',
    request.event?.deliveries.join(',') ?? '',
    request.now,
    request.schedule?.member ?? '',
    request.schedule?.at ?? 0,
    request.unschedule.join(','),
    retentionSeconds,
    request.terminal ? '1' : '0',
    shard.changes,
    request.id,
    due.bucket,
    ...guardArgs(request.whileUnchanged),
  ];
}

/** transition-6.lua's fence: the field's names (current, then an earlier version's) and the value it must hold. */
function guardArgs(unchanged: TransitionRequest['whileUnchanged']): [guardFields: string, guardValue: string] {
  if (!unchanged) return ['', ''];
  const encoded = encodeFields({ bankCalledAt: unchanged.bankCalledAt }).set[FIELD.bankCalledAt] ?? '';
  return [storedNames('bankCalledAt'), encoded];
}

/** What a poll finds of a payment that is gone. */
const NO_POLL_FIELDS: PollFields = {
  status: null,
  authReqId: null,
  intervalMs: DEFAULT_INTERVAL_MS,
  expiresAt: 0,
  attempts: 0,
  amount: 0,
  currency: '',
  bankConsentId: null,
  heldToken: null,
  spentGrant: null,
};

function pollFieldsOf(record: PaymentRecord): PollFields {
  return {
    status: record.status,
    authReqId: record.authReqId,
    intervalMs: record.intervalMs,
    expiresAt: record.expiresAt,
    attempts: record.attempts,
    amount: record.amount,
    currency: record.currency,
    bankConsentId: record.bankConsentId ?? null,
    heldToken: record.heldToken,
    spentGrant: record.spentGrant ?? null,
  };
}
