import { randomUUID } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { systemClock, type Clock } from '../clock.js';
import type { Config } from '../config.js';
import { inSpan, SpanKind, traceHeaders } from '../tracing.js';
import { describeNetworkError } from '../ciba/backchannel.js';
import { discardBody, parseRetryAfter, readJsonObject } from '../ciba/http-response.js';
import { isDefiniteRefusal, readSuccessBody, retryOutcome } from './bank-response.js';
import type { BankClient, BankLookupOutcome, BankPaymentOutcome, BankPaymentRequest } from './types.js';

const answerSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('accepted'), id: z.string().min(1) }),
  z.object({ status: z.literal('rejected'), id: z.string().optional(), reason: z.string().optional() }),
]);

/** DESIGN.md "Reconciliation": `200 {"payments":[{id, status, end_to_end_id}]}`, empty when nothing was booked. */
const lookupSchema = z.object({
  payments: z.array(z.object({ id: z.string().min(1), status: z.string().min(1), end_to_end_id: z.string() })),
});

export interface BankClientDeps {
  config: Pick<Config, 'bank'>;
  /** The shared mTLS Agent (see createBankAgent); its owner closes it. */
  agent: Dispatcher;
  clock?: Clock;
}

/**
 * The bank's payment API (DESIGN.md "Payment API"): one POST per attempt with the payment id as
 * Idempotency-Key, so a retried call moves money at most once. Only a definite answer ends the
 * payment; everything else asks the caller to retry with the same key.
 */
export function createBankClient(deps: BankClientDeps): BankClient {
  const clock = deps.clock ?? systemClock;
  const url = new URL(`${deps.config.bank.apiUrl}/payments`);
  const origin = url.origin;
  const path = url.pathname;
  const attributes = { 'http.request.method': 'POST', 'server.address': url.hostname, 'url.path': path };
  // The path only: the query names the payment being looked up, which the span's parent already says.
  const lookupAttributes = { ...attributes, 'http.request.method': 'GET' };
  return {
    async createPayment(request) {
      return inSpan('bank payment', { kind: SpanKind.CLIENT, attributes }, async (span) => {
        let response: Dispatcher.ResponseData;
        try {
          response = await deps.agent.request({
            origin,
            path,
            method: 'POST',
            headers: { ...buildPaymentHeaders(request), ...traceHeaders() },
            body: JSON.stringify(buildPaymentBody(request)),
          });
        } catch (cause) {
          return { kind: 'retry', reason: `network: ${describeNetworkError(cause)}` };
        }
        span.setAttribute('http.response.status_code', response.statusCode);
        return processPaymentResponse(response, clock.now());
      });
    },
    async findPayment(endToEndId) {
      return inSpan('bank payment lookup', { kind: SpanKind.CLIENT, attributes: lookupAttributes }, async (span) => {
        // mTLS client certificate only: the lookup must work when every access token has expired.
        let response: Dispatcher.ResponseData;
        try {
          response = await deps.agent.request({
            origin,
            path: `${path}?${new URLSearchParams({ end_to_end_id: endToEndId }).toString()}`,
            method: 'GET',
            headers: { accept: 'application/json', 'x-request-id': randomUUID(), ...traceHeaders() },
          });
        } catch (cause) {
          return { kind: 'unavailable', reason: `network: ${describeNetworkError(cause)}` };
        }
        span.setAttribute('http.response.status_code', response.statusCode);
        return processLookupResponse(response, clock.now());
      });
    },
    close: () => Promise.resolve(),
  };
}

function buildPaymentHeaders(request: BankPaymentRequest): Record<string, string> {
  return {
    authorization: `Bearer ${request.accessToken}`,
    'content-type': 'application/json',
    accept: 'application/json',
    'idempotency-key': request.idempotencyKey,
    'x-request-id': request.requestId ?? randomUUID(),
  };
}

export function buildPaymentBody(request: BankPaymentRequest): Record<string, unknown> {
  return {
    amount: request.amount,
    currency: request.currency,
    creditor: { name: request.creditor.name, iban: request.creditor.iban },
    remittance_information: request.remittanceInformation,
    end_to_end_id: request.endToEndId,
  };
}

/**
 * Maps the bank's answer to an outcome; never throws. A 4xx whose body says `status: rejected` is the
 * bank's answer for this payment; any other 4xx refuses the request itself (an expired token, a
 * missing header), which says nothing about an earlier attempt under the same key.
 */
export async function processPaymentResponse(
  response: Dispatcher.ResponseData,
  nowMs: number,
): Promise<BankPaymentOutcome> {
  const status = response.statusCode;
  if (status === 200 || status === 201) {
    const parsed = answerSchema.safeParse(await readSuccessBody(response));
    // a success we cannot read is not an answer; the idempotency key makes asking again safe
    if (!parsed.success) return { kind: 'retry', reason: 'malformed_answer' };
    return parsed.data.status === 'accepted'
      ? { kind: 'accepted', bankPaymentId: parsed.data.id }
      : { kind: 'rejected', reason: parsed.data.reason ?? 'rejected' };
  }
  if (isDefiniteRefusal(status)) {
    const body = await readJsonObject(response).catch(() => undefined);
    const reason = readRejectionReason(body) ?? `http_${status}`;
    return body?.status === 'rejected' ? { kind: 'rejected', reason } : { kind: 'refused', reason };
  }
  return retryOutcome(response, nowMs);
}

/** A short machine-readable reason from an error body (`reason`, `code` or OAuth `error`), capped. */
function readRejectionReason(body: Record<string, unknown> | undefined): string | undefined {
  const value = body?.reason ?? body?.code ?? body?.error;
  return typeof value === 'string' && value.length > 0 ? value.replace(/[^\x20-\x7e]/g, '?').slice(0, 64) : undefined;
}

/** Maps the reconciliation lookup's answer; anything but a readable 200 leaves the outcome unknown. Never throws. */
export async function processLookupResponse(
  response: Dispatcher.ResponseData,
  nowMs: number,
): Promise<BankLookupOutcome> {
  if (response.statusCode !== 200) {
    await discardBody(response);
    const retryAfterMs = parseRetryAfter(response.headers['retry-after'], nowMs);
    const reason = `http_${response.statusCode}`;
    return retryAfterMs === undefined ? { kind: 'unavailable', reason } : { kind: 'unavailable', reason, retryAfterMs };
  }
  const parsed = lookupSchema.safeParse(await readSuccessBody(response));
  if (!parsed.success) return { kind: 'unavailable', reason: 'malformed_answer' };
  return {
    kind: 'found',
    payments: parsed.data.payments.map((p) => ({ bankPaymentId: p.id, status: p.status, endToEndId: p.end_to_end_id })),
  };
}
