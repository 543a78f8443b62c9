import { randomInt } from 'node:crypto';
import type { Clock } from '../clock.js';
import { AppError, storeUnavailable } from '../errors.js';
import { BackchannelError, type CibaClient, type NotificationStore } from './ports.js';
import { authorizationDetailsFor, type Merchant } from './authorization.js';
import { sandboxBankProfile, type BankProfile } from './bank-profile.js';
import { toPaymentView, type LineItem, type PaymentRecord, type PaymentView } from './payment.js';
import { newBindingMessage, newClientSecret, newNotificationToken } from '../crypto/random-ids.js';
import { secretCheckValue, sha256 } from '../crypto/hashing.js';
import { newPaymentId } from './payment-id.js';
import type { StateMachine } from './state-machine.js';
import { workItem } from './work-items.js';

export interface CheckoutInput {
  /** The cart as the catalog priced it. */
  priced: { items: LineItem[]; amount: number };
  /** Already normalised (payments/login-hint.ts). */
  loginHint: string;
  callbackUrl?: string | undefined;
  metadata?: Record<string, string> | undefined;
  requestId?: string | undefined;
  /**
   * Awaited with the new payment's id and client secret just before the bank is asked: the caller
   * notes them (its Idempotency-Key claim) so a fault afterwards can be settled; if it throws, the
   * bank is not asked.
   */
  beforeBank?: ((payment: { paymentId: string; clientSecret: string }) => Promise<void>) | undefined;
  /** Called just before the payment's create is sent to the store (from then on it may exist). */
  beforeCreate?: (() => void) | undefined;
}

export interface CheckoutResult {
  payment: PaymentView;
  clientSecret: string;
}

export interface CheckoutService {
  startCheckout(input: CheckoutInput): Promise<CheckoutResult>;
}

/**
 * The new payment's create found its id taken: by this very create sent again, or voided by the
 * request that took the Idempotency-Key over (claimed-run.ts settles which and answers for it).
 */
export class PaymentIdTakenError extends Error {
  override readonly name = 'PaymentIdTakenError';
  constructor(paymentId: string, result: string) {
    super(`payment ${paymentId} was not created: its id is taken (${result})`);
  }
}

/** Ping mode polls too, slowly, so a lost notification only delays the payment (DESIGN.md). */
export const PING_SAFETY_POLL_MS = 30_000;

export interface CheckoutServiceDeps {
  currency: string;
  ciba: CibaClient;
  stateMachine: StateMachine;
  notifications: NotificationStore;
  clock: Clock;
  merchant: Merchant;
  /** Default: the sandbox profile (nothing to prepare). */
  bankProfile?: BankProfile;
  deliveryMode: 'poll' | 'ping';
  requestedExpiry: number;
  /** False while Redis is away: then no request may reach the bank (it would push to a phone for nothing). */
  storeAvailable: () => boolean;
  /** SCHEDULER_SHARDS: each new payment is born in one of them. */
  schedulerShards: number;
}

export function createCheckoutService(deps: CheckoutServiceDeps): CheckoutService {
  return { startCheckout: (input) => startCheckout(deps, input) };
}

/**
 * A priced cart becomes a payment: ask the customer's bank to authenticate them out of band
 * (CIBA Core §7.1), remember the auth_req_id with the first poll due, and answer with the payment.
 */
async function startCheckout(deps: CheckoutServiceDeps, input: CheckoutInput): Promise<CheckoutResult> {
  const { items, amount } = input.priced;
  if (!deps.storeAvailable()) throw storeUnavailable();
  // A random shard spreads new payments evenly over the scheduler shards (Redis Cluster slots).
  const payment = { id: newPaymentId(randomInt(deps.schedulerShards)), amount, currency: deps.currency };
  const bindingMessage = newBindingMessage();
  const notificationToken = deps.deliveryMode === 'ping' ? newNotificationToken() : undefined;
  const clientSecret = newClientSecret(payment.id);
  await input.beforeBank?.({ paymentId: payment.id, clientSecret });
  const { prepared, started } = await askBank(deps, input, { payment, bindingMessage, notificationToken });

  // Counted from the receipt of the backchannel answer (CIBA Core §7.3).
  const receivedAt = deps.clock.now();
  const intervalMs = started.interval * 1000;
  const expiresAt = receivedAt + started.expiresIn * 1000;
  const record = pendingPayment({
    ...payment,
    items,
    bindingMessage,
    expiresAt,
    createdAt: receivedAt,
    updatedAt: receivedAt,
    metadata: input.metadata ?? {},
    secretHash: secretCheckValue(clientSecret),
    authReqId: started.authReqId,
    intervalMs,
    callbackUrl: input.callbackUrl ?? null,
    bankConsentId: prepared.consentId,
  });
  if (notificationToken) {
    await deps.notifications.remember(sha256(notificationToken), payment.id, started.expiresIn);
  }
  const firstPoll = receivedAt + (notificationToken ? Math.max(intervalMs, PING_SAFETY_POLL_MS) : intervalMs);
  input.beforeCreate?.();
  const created = await deps.stateMachine.create(record, {
    member: workItem.poll(payment.id),
    at: Math.min(firstPoll, expiresAt),
  });
  // The id is taken: by this very create (the cluster client sent it again after its first reply was
  // lost with a failed node), or voided by whoever settled this checkout meanwhile. The caller
  // settles which (PaymentStore.voidUnlessCreated) rather than this answering for a payment unread.
  if (created !== 'ok') throw new PaymentIdTakenError(payment.id, created);
  return { payment: toPaymentView(record), clientSecret };
}

/** The bank's own consent first (Open Banking UK), whose id the CIBA request then names. */
async function askBank(
  deps: CheckoutServiceDeps,
  input: CheckoutInput,
  request: {
    payment: { id: string; amount: number; currency: string };
    bindingMessage: string;
    notificationToken: string | undefined;
  },
) {
  const { payment, notificationToken } = request;
  const bankProfile = deps.bankProfile ?? sandboxBankProfile;
  const prepared = await atBank(() => bankProfile.prepareAuthorization(payment));
  const started = await atBank(() =>
    deps.ciba.startBackchannelAuthentication({
      loginHint: input.loginHint,
      bindingMessage: request.bindingMessage,
      requestedExpiry: deps.requestedExpiry,
      authorizationDetails: prepared.sendAuthorizationDetails ? authorizationDetailsFor(payment, deps.merchant) : [],
      ...(prepared.requestClaims ? { claims: prepared.requestClaims } : {}),
      ...(notificationToken ? { clientNotificationToken: notificationToken } : {}),
      ...(input.requestId ? { requestId: input.requestId } : {}),
    }),
  );
  return { prepared, started };
}

/** A new payment waiting for the customer's approval: nothing of the token or bank steps yet. */
function pendingPayment(
  fields: Omit<
    PaymentRecord,
    | 'status'
    | 'failureCode'
    | 'sealedAccessToken'
    | 'accessTokenExpiresAt'
    | 'bankPaymentId'
    | 'bankCalledAt'
    | 'reconcileSince'
    | 'heldToken'
    | 'attempts'
  >,
): PaymentRecord {
  return {
    ...fields,
    status: 'pending_authorization',
    failureCode: null,
    sealedAccessToken: null,
    accessTokenExpiresAt: null,
    bankPaymentId: null,
    bankCalledAt: null,
    reconcileSince: null,
    heldToken: null,
    attempts: 0,
  };
}

async function atBank<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    throw toCheckoutError(err);
  }
}

/** The backchannel step's failures, as the storefront should see them. */
export function toCheckoutError(err: unknown): AppError {
  if (!(err instanceof BackchannelError))
    return new AppError(
      'bank_unavailable',
      'The bank cannot be reached right now.',
      { retryAfterSeconds: 5 },
      { cause: err },
    );
  switch (err.code) {
    case 'unknown_bank_user':
      return new AppError('unknown_bank_user', 'The bank does not know this customer.', {}, { cause: err });
    case 'bank_request_rejected':
      return new AppError('bank_request_rejected', 'The bank refused to start the authorization.', {}, { cause: err });
    case 'bank_client_error':
      return new AppError('bank_configuration_error', "The bank refused the shop's credentials.", {}, { cause: err });
    case 'bank_invalid_response':
      return new AppError(
        'bank_invalid_response',
        'The bank answered with something that is not a valid CIBA response.',
        {},
        { cause: err },
      );
    case 'bank_unavailable':
      return new AppError(
        'bank_unavailable',
        'The bank cannot be reached right now.',
        { retryAfterSeconds: err.retryAfterSeconds ?? 5 },
        { cause: err },
      );
  }
}
