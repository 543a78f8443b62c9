import type { Dispatcher } from 'undici';
import { discardBody, isJsonContentType, parseRetryAfter, readJsonObject } from '../ciba/http-response.js';
import type { BankPaymentOutcome } from './types.js';

/**
 * Reading the answers of a bank's payment API, shared by the bank clients: a success body, which
 * 4xx are a definite no, and the `retry` outcome of everything that decides nothing.
 */

/** 4xx answers that say "not now" rather than "no": timeout, idempotency key in flight, too early, too many. */
const RETRYABLE_CLIENT_STATUSES: ReadonlySet<number> = new Set([408, 409, 425, 429]);

export function isDefiniteRefusal(status: number): boolean {
  return status >= 400 && status < 500 && !RETRYABLE_CLIENT_STATUSES.has(status);
}

/** The JSON object of a success answer; undefined (body discarded) when it is not JSON. */
export async function readSuccessBody(response: Dispatcher.ResponseData): Promise<Record<string, unknown> | undefined> {
  const body = isJsonContentType(response.headers) ? await readJsonObject(response).catch(() => undefined) : undefined;
  if (!body) await discardBody(response);
  return body;
}

/** No answer about the payment (5xx, 429, an unusable reply): ask again, not before Retry-After. */
export async function retryOutcome(response: Dispatcher.ResponseData, nowMs: number): Promise<BankPaymentOutcome> {
  await discardBody(response);
  const retryAfterMs = parseRetryAfter(response.headers['retry-after'], nowMs);
  const reason = `http_${response.statusCode}`;
  return retryAfterMs === undefined ? { kind: 'retry', reason } : { kind: 'retry', reason, retryAfterMs };
}
