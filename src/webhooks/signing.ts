import { Webhook } from 'standardwebhooks';

/** The three Standard Webhooks headers of one delivery. */
export interface WebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * Signs an event body as Standard Webhooks specifies: HMAC-SHA256 over `${id}.${timestamp}.${body}`
 * with the `whsec_` secret, sent as `v1,<base64>`. The timestamp is the attempt's, not the event's,
 * so receivers' tolerance windows (5 minutes in the reference verifier) accept retries.
 * @see https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md#signature-scheme
 */
export function signWebhook(secret: string, eventId: string, at: Date, body: string): WebhookHeaders {
  const signature = new Webhook(secret).sign(eventId, at, body);
  return {
    'webhook-id': eventId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signature,
  };
}
