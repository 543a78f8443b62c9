/**
 * Verifying the service's webhooks (Standard Webhooks, docs/webhooks.md) with the reference
 * `standardwebhooks` library: HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, compared in
 * constant time, timestamps outside a five-minute window refused (replays).
 */
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { components } from './api-types.js';

export { WebhookVerificationError };

type Payment = components['schemas']['Payment'];

/** The body of every webhook: the event type, when the status changed, and the payment as it is now. */
export interface PaymentEvent {
  type: `payment.${Exclude<Payment['status'], 'processing'>}`;
  timestamp: string;
  data: Payment;
}

type Headers = Record<string, string | string[] | undefined> | globalThis.Headers;

function header(headers: Headers, name: string): string {
  const value = headers instanceof globalThis.Headers ? headers.get(name) : headers[name];
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

export interface WebhookVerifier {
  /**
   * The event, when the signature holds for this exact body (the raw bytes as received, before any
   * JSON parsing); throws `WebhookVerificationError` otherwise. Deduplicate on `webhook-id`.
   */
  verify(body: string | Buffer, headers: Headers): PaymentEvent;
}

/** `secret` is WEBHOOK_SECRET (`whsec_…`). */
export function createWebhookVerifier(secret: string): WebhookVerifier {
  const webhook = new Webhook(secret);
  return {
    verify(body, headers) {
      return webhook.verify(typeof body === 'string' ? body : body.toString('utf8'), {
        'webhook-id': header(headers, 'webhook-id'),
        'webhook-timestamp': header(headers, 'webhook-timestamp'),
        'webhook-signature': header(headers, 'webhook-signature'),
      }) as PaymentEvent;
    },
  };
}
