import type { Dispatcher } from 'undici';
import type { Clock } from '../../clock.js';
import { formatMinorUnits } from '../../payments/amounts.js';
import type { BankProfile } from '../../payments/bank-profile.js';
import { describeNetworkError } from '../../ciba/backchannel.js';
import { INTENT_ID_CLAIM } from '../../ciba/id-token.js';
import { BackchannelError } from '../../ciba/types.js';
import type { BankClient, BankPaymentOutcome } from '../types.js';
import { ClientCredentialsError } from './client-credentials.js';
import {
  buildInitiation,
  buildRisk,
  processConsentResponse,
  processPaymentResponse,
  readConsentStatus,
  type OpenBankingSettings,
} from './ob-requests.js';
import type { ObSend } from './ob-transport.js';

/**
 * The protocol steps of the UK profile, one function each: the consent at checkout, the payment
 * with the CIBA access token, its status, and the reconciliation lookups. Each sends one request
 * (ob-transport.ts) and hands the answer to its processor (ob-requests.ts).
 */
export interface ObStepContext {
  send: ObSend;
  credentials: { get(): Promise<string>; invalidate(token: string): void };
  settings: OpenBankingSettings;
  clock: Clock;
}

/** A reference to one payment as the UK profile knows it: its consent and, once answered, the ASPSP's id. */
export interface DomesticPaymentReference {
  endToEndId: string;
  consentId: string | null;
  bankPaymentId: string | null;
}

/** What the profile's GET endpoints say was booked: `accepted` only for the settled Accepted* statuses. */
export type DomesticPaymentLookup =
  | { kind: 'found'; payments: { bankPaymentId: string; status: 'accepted' | 'rejected'; endToEndId: string }[] }
  | { kind: 'unavailable'; reason: string; retryAfterMs?: number };

type PreparedAuthorization = Awaited<ReturnType<BankProfile['prepareAuthorization']>>;
type PaymentRequest = Parameters<BankClient['createPayment']>[0];

/** Step 2: POST /domestic-payment-consents with a client-credentials token; the consent id becomes the intent claim. */
export async function createConsent(
  context: ObStepContext,
  payment: Parameters<BankProfile['prepareAuthorization']>[0],
): Promise<PreparedAuthorization> {
  const initiation = buildInitiation(context.settings, {
    id: payment.id,
    amount: formatMinorUnits(payment.amount, payment.currency),
    currency: payment.currency.toUpperCase(),
  });
  const body = JSON.stringify({ Data: { Initiation: initiation }, Risk: buildRisk(context.settings) });
  const token = await context.credentials.get().catch((error: unknown) => {
    const refused = error instanceof ClientCredentialsError && error.kind === 'refused';
    throw new BackchannelError(refused ? 'bank_client_error' : 'bank_unavailable', 'no client-credentials token');
  });
  let response: Dispatcher.ResponseData;
  try {
    // Max40Text; distinct from the payment's key, which is the payment id itself
    response = await context.send('POST', '/domestic-payment-consents', token, {
      body,
      idempotencyKey: `${payment.id}-consent`,
    });
  } catch (cause) {
    throw new BackchannelError('bank_unavailable', `consent request failed: ${describeNetworkError(cause)}`);
  }
  if (response.statusCode === 401) context.credentials.invalidate(token);
  const consentId = await processConsentResponse(response, initiation, context.clock.now());
  const intent = { [INTENT_ID_CLAIM]: { value: consentId, essential: true } };
  return { consentId, requestClaims: { id_token: intent, userinfo: intent }, sendAuthorizationDetails: false };
}

/** Step 4: POST /domestic-payments with the CIBA access token, the ConsentId and the identical Initiation. */
export async function submitDomesticPayment(
  context: ObStepContext,
  request: PaymentRequest,
): Promise<BankPaymentOutcome> {
  if (request.consentId === undefined) return { kind: 'rejected', reason: 'no_consent' };
  const initiation = buildInitiation(context.settings, {
    id: request.endToEndId,
    amount: request.amount,
    currency: request.currency,
  });
  const body = JSON.stringify({
    Data: { ConsentId: request.consentId, Initiation: initiation },
    Risk: buildRisk(context.settings),
  });
  let response: Dispatcher.ResponseData;
  try {
    response = await context.send('POST', '/domestic-payments', request.accessToken, {
      body,
      idempotencyKey: request.idempotencyKey,
    });
  } catch (cause) {
    return { kind: 'retry', reason: `network: ${describeNetworkError(cause)}` };
  }
  return processPaymentResponse(
    response,
    { consentId: request.consentId, bankPaymentId: undefined, fourXxIsFinal: true },
    context.clock.now(),
  );
}

/** Step 5: GET /domestic-payments/{id} with the client-credentials token; no 4xx here is an answer about the payment. */
export async function getDomesticPayment(context: ObStepContext, bankPaymentId: string): Promise<BankPaymentOutcome> {
  let token: string;
  try {
    token = await context.credentials.get();
  } catch (error) {
    return { kind: 'retry', reason: error instanceof Error ? error.message : 'no client-credentials token' };
  }
  let response: Dispatcher.ResponseData;
  try {
    response = await context.send('GET', `/domestic-payments/${encodeURIComponent(bankPaymentId)}`, token);
  } catch (cause) {
    return { kind: 'retry', reason: `network: ${describeNetworkError(cause)}` };
  }
  if (response.statusCode === 401) context.credentials.invalidate(token);
  return processPaymentResponse(
    response,
    { consentId: undefined, bankPaymentId, fourXxIsFinal: false },
    context.clock.now(),
  );
}

/** Reconciliation by the payment's id when known, else by its consent (see UkOpenBankingClient.lookupPayment). */
export async function lookupDomesticPayment(
  context: ObStepContext,
  reference: DomesticPaymentReference,
): Promise<DomesticPaymentLookup> {
  if (reference.bankPaymentId !== null) {
    const outcome = await getDomesticPayment(context, reference.bankPaymentId);
    switch (outcome.kind) {
      case 'accepted':
      case 'rejected': {
        const status = outcome.kind;
        const { endToEndId, bankPaymentId } = reference;
        return { kind: 'found', payments: [{ bankPaymentId, status, endToEndId }] };
      }
      case 'pending':
        return { kind: 'unavailable', reason: 'payment still pending at the bank' };
      case 'refused': // a refused status lookup says nothing about the payment (fourXxIsFinal is false here)
        return { kind: 'unavailable', reason: outcome.reason };
      case 'retry':
        return { kind: 'unavailable', reason: outcome.reason, ...retryAfter(outcome.retryAfterMs) };
    }
  }
  if (reference.consentId === null) return { kind: 'found', payments: [] };
  return lookupConsent(context, reference.consentId);
}

/** GET /domestic-payment-consents/{id}: was a payment made with this consent? */
async function lookupConsent(context: ObStepContext, consentId: string): Promise<DomesticPaymentLookup> {
  let response: Dispatcher.ResponseData;
  try {
    const token = await context.credentials.get();
    response = await context.send('GET', `/domestic-payment-consents/${encodeURIComponent(consentId)}`, token);
    if (response.statusCode === 401) context.credentials.invalidate(token);
  } catch (error) {
    return { kind: 'unavailable', reason: error instanceof Error ? error.name : 'consent lookup failed' };
  }
  const status = await readConsentStatus(response);
  if (status === undefined) return { kind: 'unavailable', reason: `consent lookup answered ${response.statusCode}` };
  return status === 'Consumed'
    ? { kind: 'unavailable', reason: 'consent consumed by a payment whose id is unknown' }
    : { kind: 'found', payments: [] };
}

function retryAfter(ms: number | undefined): { retryAfterMs?: number } {
  return ms === undefined ? {} : { retryAfterMs: ms };
}
