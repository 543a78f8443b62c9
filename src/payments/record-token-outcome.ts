import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { authorizationDetailsFor, type Merchant } from './authorization.js';
import { backoffMs } from './backoff.js';
import { PING_SAFETY_POLL_MS } from './checkout.js';
import type { FailureCode, SpentGrant } from './payment.js';
import {
  sealContext,
  type CibaClient,
  type NextStep,
  type PaymentStore,
  type PollFields,
  type ReceivedTokenResponse,
  type Sealer,
  type TokenExpectation,
  type TokenOutcome,
  type TransitionResult,
} from './ports.js';
import type { StateMachine } from './state-machine.js';
import { workItem } from './work-items.js';

/** Conditions an operator must hear about, counted by `operator_alarms_total{alarm}`. */
export type TokenAlarm = 'token_client_rejected' | 'bank_keys_unavailable' | 'token_after_failure';

export interface RecordTokenOutcomeDeps {
  store: PaymentStore;
  stateMachine: StateMachine;
  ciba: CibaClient;
  sealer: Sealer;
  clock: Clock;
  logger: Logger;
  merchant: Merchant;
  deliveryMode: 'poll' | 'ping';
  onAnswer?: (answer: string) => void;
  onAlarm?: (alarm: TokenAlarm) => void;
  /** How long a taken-over poll that finds the auth_req_id spent waits for the worker before it (`holderGraceMs`). */
  takeoverGraceMs: number;
}

/** What the claim of the poll brought along. */
export interface PollClaim {
  /** The payment's poll fields as the claim read them, when it did and they suffice. */
  prefetched?: PollFields | undefined;
  /** The poll came back from an expired lease: its earlier worker may hold the bank's answer. */
  takenOver?: boolean | undefined;
  /**
   * This worker's lease on the poll: the claimed item, whose `leaseUntil` (the clock's ms) renewals
   * move forward. Past it, another worker may have taken the poll over and spent the auth_req_id
   * while this one waited on the bank.
   */
  lease?: { readonly leaseUntil?: number | undefined } | undefined;
}

/** slow_down: "the interval MUST be increased by at least 5 seconds for this and all subsequent requests" (CIBA Core §11). */
const SLOW_DOWN_STEP_MS = 5000;
/**
 * Recording the bank's final answer is retried for as long as the answer is worth anything: a token
 * until it expires (a quarter hour when the bank gave no lifetime), a refusal or expiry for a minute.
 * A primary failing over refuses writes for seconds (cluster-node-timeout plus an election), far
 * longer than a few quick tries: giving up then would poll again, and the bank answers invalid_grant
 * to an auth_req_id already used, so a customer's approval would end as a failed payment.
 */
const RECORD_RETRY_FIRST_MS = 100;
const RECORD_RETRY_MAX_MS = 1000;
const FAILURE_RECORD_WINDOW_MS = 60_000;
/** A second claim of a poll whose answer this process still holds (its lease ran out meanwhile): looked at again this much later. */
const IN_HAND_RECHECK_MS = 1000;
/** ioredis' longest wait between reconnection attempts (its default retryStrategy and ours for a cluster). */
const STORE_RECONNECT_MAX_MS = 2000;
/** The answer that says the auth_req_id timed out: after a takeover, maybe spent by the worker before just in time. */
const EXPIRED_GRANT = 'expired_token';
/**
 * The answer that says the grant is used up: from a bank that follows the spec, only ever because
 * another poll got the token (this process's own polls of one payment never overlap: `inHand`). Its
 * grace does not depend on this worker knowing of a takeover, which it may not (the takeover's first
 * poll got a transient answer, or the previous release put the lease back).
 */
const SPENT_GRANT = 'invalid_grant';
/** A poll claimed without a lease (tests, tools): never lapsed. */
const NO_LEASE: NonNullable<PollClaim['lease']> = {};

/**
 * The grace of a poll that finds the auth_req_id spent (see `failOrAwaitHolder`): the longest
 * the worker that got the token may still need to record it once the store takes its writes again.
 * This claim shows that the store does; the holder's connection is back within one reconnection
 * wait; a try it started meanwhile (a read and a transition, each up to the command timeout) fails;
 * it waits at most RECORD_RETRY_MAX_MS; its next try lands within the same two command timeouts.
 * 2 s + 4 × 2 s + 1 s = 11 s with the default REDIS_COMMAND_TIMEOUT_MS: short beside the few minutes
 * the customer waits for at most. Not a hard bound: a worker cut off or stalled for longer (or whose
 * write follows cluster redirects) records too late, finds the payment failed and raises the
 * `token_after_failure` alarm; no money moves either way.
 */
export function holderGraceMs(storeCommandTimeoutMs: number): number {
  return STORE_RECONNECT_MAX_MS + 4 * storeCommandTimeoutMs + RECORD_RETRY_MAX_MS;
}
const DONE: NextStep = { done: true };
/** Done, and the payment's bank submission is due now. */
const DONE_SUBMIT_DUE: NextStep = { done: true, followUp: true };
const HELD_TOKEN_DEFAULT_LIFE_S = 900;

/** The poll fields of the payment being polled, with its id, whether its claim was a takeover, and its lease. */
type Poll = PollFields & { id: string; takenOver: boolean; lease: NonNullable<PollClaim['lease']> };

/**
 * One token poll for a pending payment and what its answer means (CIBA Core §7.3, §10, §11), as a
 * story: a token already received but not yet validated is validated again (a token is issued once,
 * so it is never polled for twice); past expiry the payment fails; otherwise the bank is asked and
 * its answer recorded: wait, slow down, back off, fail, keep the token for later, or `authorized`
 * with the sealed access token and the bank submission due at once.
 * The hot path of the service: one token request on a kept-alive connection; the poll fields come
 * with the claim (`prefetched`) or from one HMGET.
 */
export function createRecordTokenOutcome(
  deps: RecordTokenOutcomeDeps,
): (paymentId: string, claim?: PollClaim) => Promise<NextStep> {
  const { clock } = deps;
  // Payments whose poll runs here now. The bank's answer is spent once received, so while this
  // process still tries to record it (the store failing over), its poll taken again after the lease
  // ran out must not ask the bank a second time: it only looks again shortly.
  const inHand = new Set<string>();
  return async function recordTokenOutcome(paymentId, claim = {}) {
    if (inHand.has(paymentId)) return { at: clock.now() + IN_HAND_RECHECK_MS };
    inHand.add(paymentId);
    try {
      return await pollOnce(deps, paymentId, claim);
    } finally {
      inHand.delete(paymentId);
    }
  };
}

async function pollOnce(deps: RecordTokenOutcomeDeps, paymentId: string, claim: PollClaim): Promise<NextStep> {
  const { store, ciba, clock } = deps;
  const fields = claim.prefetched ?? (await store.getPollFields(paymentId));
  const poll: Poll = {
    ...fields,
    id: paymentId,
    takenOver: claim.takenOver === true,
    lease: claim.lease ?? NO_LEASE,
  };
  if (poll.status !== 'pending_authorization' || !poll.authReqId) return DONE;
  // A token in hand (validated again once the bank's keys are back) beats a grant noted as spent.
  if (poll.heldToken) return validateHeldToken(deps, poll, poll.authReqId);
  if (poll.spentGrant) return failAfterGrace(deps, poll.id, poll.spentGrant);
  if (clock.now() >= poll.expiresAt) return failOrAwaitHolder(deps, poll, 'expired');
  const receivedAt = clock.now();
  return applyOutcome(deps, poll, await ciba.requestToken(expectationFor(deps, poll, poll.authReqId)), receivedAt);
}

async function applyOutcome(
  deps: RecordTokenOutcomeDeps,
  poll: Poll,
  outcome: TokenOutcome,
  receivedAt: number,
): Promise<NextStep> {
  deps.onAnswer?.(outcome.kind === 'failed' || outcome.kind === 'client_rejected' ? outcome.error : outcome.kind);
  switch (outcome.kind) {
    case 'pending':
      if (poll.attempts > 0) await deps.store.update(poll.id, { attempts: 0 });
      return pollAgainAfter(deps, poll, pollInterval(deps, poll.intervalMs));
    case 'slow_down': {
      const intervalMs = poll.intervalMs + SLOW_DOWN_STEP_MS;
      await deps.store.update(poll.id, { intervalMs, attempts: 0 });
      return pollAgainAfter(deps, poll, pollInterval(deps, intervalMs));
    }
    case 'retry':
      return backOff(deps, poll, outcome.retryAfterMs);
    case 'client_rejected':
      deps.onAlarm?.('token_client_rejected');
      deps.logger.error(
        { paymentId: poll.id, error: outcome.error, attempt: poll.attempts + 1 },
        'the bank refused our client credentials at the token endpoint; retrying while the request is valid (check certificate, keys and clock)',
      );
      return backOff(deps, poll, undefined);
    case 'failed':
      if (outcome.error === SPENT_GRANT) return awaitOtherWorker(deps, poll, outcome.failureCode);
      if (outcome.error === EXPIRED_GRANT) return failOrAwaitHolder(deps, poll, outcome.failureCode);
      return fail(deps, poll.id, outcome.failureCode);
    case 'unverified':
      return holdToken(deps, poll, outcome.response, outcome.reason);
    case 'authorized':
      return recordAuthorized(
        deps,
        poll.id,
        outcome.accessToken,
        outcome.accessTokenExpiresIn ? receivedAt + outcome.accessTokenExpiresIn * 1000 : null,
      );
  }
}

/**
 * The next poll, never after expiry. +1 ms: due times are whole milliseconds, and a poll must never
 * reach the bank even a fraction of a millisecond before `interval` has passed (a strict bank answers slow_down).
 */
function pollAgainAfter(deps: RecordTokenOutcomeDeps, poll: Poll, delayMs: number): NextStep {
  return { at: Math.min(deps.clock.now() + delayMs + 1, poll.expiresAt) };
}

/** In ping mode the bank's ping moves the poll earlier; the scheduled poll is only the safety net. */
function pollInterval(deps: RecordTokenOutcomeDeps, intervalMs: number): number {
  return deps.deliveryMode === 'ping' ? Math.max(intervalMs, PING_SAFETY_POLL_MS) : intervalMs;
}

/** No answer this time (429/5xx/network, or our credentials refused): back off with jitter, never below the interval. */
async function backOff(deps: RecordTokenOutcomeDeps, poll: Poll, retryAfterMs: number | undefined): Promise<NextStep> {
  await deps.store.update(poll.id, { attempts: poll.attempts + 1 });
  const delay = backoffMs(poll.attempts, {
    baseMs: poll.intervalMs,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
  return pollAgainAfter(deps, poll, Math.max(poll.intervalMs, delay));
}

async function fail(deps: RecordTokenOutcomeDeps, paymentId: string, failureCode: FailureCode): Promise<NextStep> {
  await recordFinal(deps, deps.clock.now() + FAILURE_RECORD_WINDOW_MS, async () => {
    const current = await deps.store.get(paymentId);
    if (current?.status === 'pending_authorization')
      await deps.stateMachine.transition(current, 'failed', { failureCode, fields: { spentGrant: null } });
  });
  return DONE;
}

/**
 * A poll that would fail because the auth_req_id is spent or expired. After a takeover the worker
 * that held the poll before may have spent it: received the token just before its lease ran out and
 * still be recording it (recordFinal, while its store connection is away or its process stalled).
 * The same holds the other way round when this worker's own lease lapsed while it waited on the
 * bank (its renewals failed, or it stalled): another worker may have taken the poll over and got
 * the token first, and be recording it now.
 * Failing now would turn the customer's approval into a failed payment once that worker's write
 * finds it no longer pending. So the failure is noted with a deadline (`holderGraceMs`) and the poll
 * comes back then to read the payment, never to ask the bank again: recorded by then (authorized …),
 * nothing more; still pending, it fails with the code it would have failed with now. When that
 * worker died with the token, nobody records it: the grace only delays `failed` (no money moved).
 */
async function failOrAwaitHolder(
  deps: RecordTokenOutcomeDeps,
  poll: Poll,
  failureCode: FailureCode,
): Promise<NextStep> {
  if (!mayBeSharedWithAnotherWorker(deps, poll)) return fail(deps, poll.id, failureCode);
  return awaitOtherWorker(deps, poll, failureCode);
}

/** Notes the failure with its deadline and comes back then to read the payment (see `failOrAwaitHolder`). */
async function awaitOtherWorker(deps: RecordTokenOutcomeDeps, poll: Poll, failureCode: FailureCode): Promise<NextStep> {
  const spentGrant: SpentGrant = { failureCode, failAt: deps.clock.now() + deps.takeoverGraceMs };
  await deps.store.update(poll.id, { spentGrant });
  deps.logger.warn(
    { paymentId: poll.id, failureCode, graceMs: deps.takeoverGraceMs },
    'poll taken over (or its lease lapsed): the auth_req_id is spent or expired; waiting for the other worker before failing the payment',
  );
  return { at: spentGrant.failAt };
}

/** Whether another worker may have polled this auth_req_id too: a takeover, or this worker's lease ran out meanwhile. */
function mayBeSharedWithAnotherWorker(deps: RecordTokenOutcomeDeps, poll: Poll): boolean {
  const { leaseUntil } = poll.lease;
  return poll.takenOver || (leaseUntil !== undefined && deps.clock.now() >= leaseUntil);
}

/** After the grace (see `failOrAwaitHolder`): a payment still pending fails; `fail` reads it again first. */
function failAfterGrace(deps: RecordTokenOutcomeDeps, paymentId: string, spent: SpentGrant): Promise<NextStep> {
  if (deps.clock.now() < spent.failAt) return Promise.resolve({ at: spent.failAt });
  return fail(deps, paymentId, spent.failureCode);
}

/**
 * The bank's final answer is spent the moment it arrives (the auth_req_id must never be sent again,
 * and a token is handed out once), so recording it is retried here, with back-off, until `until`,
 * rather than by polling again. The item stays in hand meanwhile (its lease is renewed while the
 * store answers renewals; see `inHand` for when it does not).
 */
async function recordFinal(
  { logger, clock }: RecordTokenOutcomeDeps,
  until: number,
  step: () => Promise<unknown>,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await step();
      if (attempt > 1) logger.info({ attempt }, 'the final CIBA answer is recorded');
      return;
    } catch (err) {
      if (clock.now() >= until) throw err;
      if (attempt === 1 || attempt % 10 === 0)
        logger.warn({ err, attempt }, 'recording the final CIBA answer failed; trying again');
      const delay = Math.min(RECORD_RETRY_FIRST_MS * 2 ** (attempt - 1), RECORD_RETRY_MAX_MS);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

async function recordAuthorized(
  deps: RecordTokenOutcomeDeps,
  paymentId: string,
  accessToken: string,
  expiresAt: number | null,
): Promise<NextStep> {
  const sealedAccessToken = deps.sealer.seal(accessToken, sealContext(paymentId, 'token'));
  const until = expiresAt ?? deps.clock.now() + HELD_TOKEN_DEFAULT_LIFE_S * 1000;
  const recorded = { submitDue: false };
  await recordFinal(deps, until, async () => {
    const current = await deps.store.get(paymentId);
    if (current?.status === 'failed') alarmTokenAfterFailure(deps, paymentId);
    if (current?.status !== 'pending_authorization') return;
    const result = await deps.stateMachine.transition(current, 'authorized', {
      fields: { sealedAccessToken, accessTokenExpiresAt: expiresAt, heldToken: null, spentGrant: null },
      schedule: { member: workItem.submit(paymentId), at: deps.clock.now() },
    });
    recorded.submitDue = result === 'ok';
  });
  return recorded.submitDue ? DONE_SUBMIT_DUE : DONE;
}

/**
 * The customer approved, but the payment had already failed (another worker's grace ran out first
 * while this one was cut off for longer): no money moved; the shop sees failed. Rare, and worth an
 * operator's look.
 */
function alarmTokenAfterFailure(deps: RecordTokenOutcomeDeps, paymentId: string): void {
  deps.onAlarm?.('token_after_failure');
  deps.logger.error({ paymentId }, 'a token arrived for a payment already failed; no money moved');
}

/**
 * The bank's keys could not be fetched: keep the token response (sealed) and validate it again soon.
 * Kept only while the payment still waits for it: a payment that ended meanwhile (failed after
 * another worker's grace, canceled, or authorized by the worker that took the poll over) gets no
 * token at rest, and a failed one raises the same alarm as a token that could be checked.
 */
async function holdToken(
  deps: RecordTokenOutcomeDeps,
  poll: Poll,
  response: ReceivedTokenResponse,
  reason: string,
): Promise<NextStep> {
  deps.onAlarm?.('bank_keys_unavailable');
  deps.logger.error(
    { paymentId: poll.id, reason, attempt: poll.attempts + 1 },
    'token received but the bank keys are unavailable; validating again later',
  );
  const heldToken = deps.sealer.seal(JSON.stringify(response), sealContext(poll.id, 'held_token'));
  const until = response.receivedAt + (response.expiresIn ?? HELD_TOKEN_DEFAULT_LIFE_S) * 1000;
  const held = { result: 'ok' as TransitionResult };
  await recordFinal(deps, until, async () => {
    const note = { heldToken, attempts: poll.attempts + 1, spentGrant: null };
    held.result = await deps.store.update(poll.id, note, ['pending_authorization']);
  });
  if (held.result !== 'ok') {
    if ((await deps.store.getPollFields(poll.id)).status === 'failed') alarmTokenAfterFailure(deps, poll.id);
    return DONE;
  }
  return { at: deps.clock.now() + backoffMs(poll.attempts, { baseMs: 1000, maxMs: 30_000 }) };
}

function expectationFor(deps: RecordTokenOutcomeDeps, poll: Poll, authReqId: string): TokenExpectation {
  return new PollExpectation(deps.merchant, poll, authReqId);
}

/**
 * What a poll's answer must match. A class, not an object literal with a getter: one is made per
 * poll, thousands a second, and the details are only built when the bank says yes.
 */
class PollExpectation implements TokenExpectation {
  readonly authReqId: string;
  readonly intentId?: string;
  readonly #merchant: Merchant;
  readonly #poll: Poll;
  constructor(merchant: Merchant, poll: Poll, authReqId: string) {
    this.authReqId = authReqId;
    if (poll.bankConsentId) this.intentId = poll.bankConsentId;
    this.#merchant = merchant;
    this.#poll = poll;
  }
  get authorizationDetails() {
    const { id, amount, currency } = this.#poll;
    return authorizationDetailsFor({ id, amount, currency }, this.#merchant);
  }
}

/** Validates a token kept from an earlier answer; the token endpoint is not asked again. */
async function validateHeldToken(deps: RecordTokenOutcomeDeps, poll: Poll, authReqId: string): Promise<NextStep> {
  let response: ReceivedTokenResponse;
  try {
    response = JSON.parse(
      deps.sealer.open(poll.heldToken ?? '', sealContext(poll.id, 'held_token')),
    ) as ReceivedTokenResponse;
  } catch (err) {
    deps.logger.error(
      { err, paymentId: poll.id },
      'kept token response cannot be opened; the payment fails (no money moved)',
    );
    return fail(deps, poll.id, 'authorization_error');
  }
  // Past the access token's life (or a quarter hour when the bank gave none) it cannot pay anyway.
  if (deps.clock.now() >= response.receivedAt + (response.expiresIn ?? HELD_TOKEN_DEFAULT_LIFE_S) * 1000) {
    return fail(deps, poll.id, 'expired');
  }
  const outcome = await deps.ciba.validateReceivedToken(response, expectationFor(deps, poll, authReqId));
  return applyOutcome(deps, poll, outcome, response.receivedAt);
}
