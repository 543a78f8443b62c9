import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { signWebhook } from '../../src/webhooks/signing.js';

const SECRET = `whsec_${Buffer.from('a test secret of 32 bytes length').toString('base64')}`;
const OTHER_SECRET = `whsec_${Buffer.from('another secret, also 32 bytes!!!').toString('base64')}`;
const BODY = JSON.stringify({ type: 'payment.succeeded', data: { id: 'pay_abc', amount: 1290 } });

/** Verifies as a receiver would, at the given wall-clock time (the verifier checks a 5-minute window). */
function verifyAt(now: Date, secret: string, headers: Record<string, string>, body: string): unknown {
  const realNow = Date.now;
  Date.now = () => now.getTime();
  try {
    return new Webhook(secret).verify(body, headers);
  } finally {
    Date.now = realNow;
  }
}

describe('signWebhook', () => {
  const at = new Date('2025-03-01T12:00:00.000Z');

  test('when signed, then the three headers are the event id, the attempt time in seconds and a v1 signature', () => {
    const headers = signWebhook(SECRET, 'msg_1', at, BODY);
    expect(headers['webhook-id']).toBe('msg_1');
    expect(headers['webhook-timestamp']).toBe(String(at.getTime() / 1000));
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
  });

  test('when verified with the standardwebhooks verifier, then it passes and returns the payload', () => {
    const headers = signWebhook(SECRET, 'msg_1', at, BODY);
    expect(verifyAt(at, SECRET, { ...headers }, BODY)).toEqual(JSON.parse(BODY));
  });

  test('when the body is tampered with, then verification fails', () => {
    const headers = signWebhook(SECRET, 'msg_1', at, BODY);
    const tampered = BODY.replace('1290', '1');
    expect(() => verifyAt(at, SECRET, { ...headers }, tampered)).toThrow(WebhookVerificationError);
  });

  test('when the timestamp header is changed, then verification fails', () => {
    const headers = signWebhook(SECRET, 'msg_1', at, BODY);
    const moved = { ...headers, 'webhook-timestamp': String(at.getTime() / 1000 + 1) };
    expect(() => verifyAt(at, SECRET, moved, BODY)).toThrow(WebhookVerificationError);
  });

  test('when the id header is changed, then verification fails', () => {
    const headers = signWebhook(SECRET, 'msg_1', at, BODY);
    expect(() => verifyAt(at, SECRET, { ...headers, 'webhook-id': 'msg_2' }, BODY)).toThrow(WebhookVerificationError);
  });

  test('when verified with another secret, then it fails', () => {
    const headers = signWebhook(SECRET, 'msg_1', at, BODY);
    expect(() => verifyAt(at, OTHER_SECRET, { ...headers }, BODY)).toThrow(WebhookVerificationError);
  });

  test('when a retry is signed later, then its own timestamp verifies then, although the first attempt is stale', () => {
    const later = new Date(at.getTime() + 3600_000);
    const first = signWebhook(SECRET, 'msg_1', at, BODY);
    const retry = signWebhook(SECRET, 'msg_1', later, BODY);
    expect(() => verifyAt(later, SECRET, { ...first }, BODY)).toThrow(WebhookVerificationError);
    expect(verifyAt(later, SECRET, { ...retry }, BODY)).toEqual(JSON.parse(BODY));
  });

  test('when the time has a millisecond part, then the timestamp is whole seconds and still verifies', () => {
    const odd = new Date('2025-03-01T12:00:00.999Z');
    const headers = signWebhook(SECRET, 'msg_1', odd, BODY);
    expect(headers['webhook-timestamp']).toBe(String(Math.floor(odd.getTime() / 1000)));
    expect(verifyAt(odd, SECRET, { ...headers }, BODY)).toEqual(JSON.parse(BODY));
  });
});
