import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { JWTPayload } from 'jose';
import { z } from 'zod';
import { bearerToken, boundThumbprint, presentsBoundCertificate } from './access-tokens.js';
import type { SandboxKeys } from './keys.js';
import { HttpProblem, invalidToken, readJson, send } from './payment-api-http.js';
import { paymentInitiationSchema, toMinorUnits, type PaymentInitiation } from './payment-details.js';
import type { Transfer } from './transfers.js';

/**
 * POST {apiUrl}/payments (DESIGN.md "Payment API"): a certificate-bound access token, an
 * Idempotency-Key, and a body that must equal the payment_initiation the customer approved.
 * One request per client and key moves money; a replay gets the stored answer.
 */
export interface CreatePaymentContext {
  redis: Redis;
  keys: SandboxKeys;
  /** Verifies the OP's JWT access token (createJwtAccessTokenCheck); undefined when it is not valid. */
  checkJwt: (token: string) => Promise<JWTPayload | undefined>;
  log: (line: string) => void;
}

const paymentBodySchema = z
  .object({
    amount: z.string().regex(/^(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?$/),
    currency: z.string().regex(/^[A-Z]{3}$/),
    creditor: z.object({ name: z.string().min(1).max(70), iban: z.string().min(5).max(34) }).strict(),
    remittance_information: z.string().max(140).optional(),
    end_to_end_id: z.string().min(1).max(35),
  })
  .strict();
type PaymentBody = z.infer<typeof paymentBodySchema>;

interface StoredAnswer {
  state: 'done';
  fingerprint: string;
  status: number;
  body: Record<string, unknown>;
}

/** What a (client, Idempotency-Key) pair and a token's spending are kept for. */
const IDEMPOTENCY_SECONDS = 7 * 24 * 3600;

export async function createPayment(
  context: CreatePaymentContext,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const token = await authenticate(context, req);
  const { idempotencyKey, body } = await readPaymentRequest(req);
  await failIfInjected(context);
  const clientId = typeof token.client_id === 'string' ? token.client_id : 'unknown';
  const idemKey = context.keys.paymentIdempotency(clientId, idempotencyKey);
  const fingerprint = createHash('sha256').update(JSON.stringify(body)).digest('base64url');
  // SET NX: exactly one request per client and key gets to move money.
  const claimed = await context.redis.set(
    idemKey,
    JSON.stringify({ state: 'processing' }),
    'EX',
    IDEMPOTENCY_SECONDS,
    'NX',
  );
  if (claimed === null) {
    const stored = await storedAnswer(context.redis, idemKey, fingerprint);
    send(res, stored.status, stored.body, { 'idempotent-replayed': 'true' });
    return;
  }
  await spendToken(context, token, idempotencyKey, idemKey);
  const answer = await bookPayment(context, { token, clientId, idempotencyKey, idemKey, fingerprint, body });
  send(res, answer.status, answer.body);
}

/** RFC 8705 §3.1: every token must be bound, and come with the certificate it is bound to. */
async function authenticate(context: CreatePaymentContext, req: IncomingMessage): Promise<JWTPayload> {
  const token = bearerToken(req);
  if (token === undefined) throw invalidToken('missing bearer token');
  const payload = await context.checkJwt(token);
  if (payload === undefined) throw invalidToken('access token is not valid');
  // A token copied off the wire is worth nothing without the certificate's private key.
  const thumbprint = boundThumbprint(payload);
  if (thumbprint === undefined) throw invalidToken('access token is not certificate-bound');
  if (!presentsBoundCertificate(req, thumbprint))
    throw invalidToken('client certificate does not match the token binding');
  return payload;
}

async function readPaymentRequest(req: IncomingMessage): Promise<{ idempotencyKey: string; body: PaymentBody }> {
  const idempotencyKey = req.headers['idempotency-key'];
  if (typeof idempotencyKey !== 'string' || idempotencyKey.length === 0 || idempotencyKey.length > 255) {
    throw new HttpProblem(400, { error: 'invalid_request', error_description: 'Idempotency-Key header required' });
  }
  const parsed = paymentBodySchema.safeParse(await readJson(req));
  if (!parsed.success) {
    throw new HttpProblem(400, { error: 'invalid_request', error_description: 'body does not match the contract' });
  }
  return { idempotencyKey, body: parsed.data };
}

/** The test knob failNextPayments(n): the next n calls answer 500 before any side effect. */
async function failIfInjected(context: CreatePaymentContext): Promise<void> {
  const failing = await context.redis.decr(context.keys.failNextPayments());
  if (failing >= 0) throw new HttpProblem(500, { error: 'server_error', error_description: 'injected failure' });
  await context.redis.incr(context.keys.failNextPayments());
}

/** A key already claimed: its stored answer for the same body, 409 while in progress, 422 for another body. */
async function storedAnswer(redis: Redis, idemKey: string, fingerprint: string): Promise<StoredAnswer> {
  const stored = JSON.parse((await redis.get(idemKey)) ?? '{"state":"processing"}') as
    StoredAnswer | { state: 'processing' };
  if (stored.state === 'processing')
    throw new HttpProblem(409, { error: 'request_in_progress' }, { 'retry-after': '1' });
  if (stored.fingerprint !== fingerprint) {
    throw new HttpProblem(422, { error: 'idempotency_key_reused', error_description: 'other body, same key' });
  }
  return stored;
}

/**
 * One approval pays one payment: the first new Idempotency-Key a token is used with spends it; the
 * same key replays (above), another key is refused and its claim released.
 */
async function spendToken(
  context: CreatePaymentContext,
  token: JWTPayload,
  idempotencyKey: string,
  idemKey: string,
): Promise<void> {
  const tokenId = typeof token.jti === 'string' ? token.jti : JSON.stringify(token);
  const spentKey = context.keys.spentToken(tokenId);
  const first = await context.redis.set(spentKey, idempotencyKey, 'EX', IDEMPOTENCY_SECONDS, 'NX');
  if (first !== null || (await context.redis.get(spentKey)) === idempotencyKey) return;
  await context.redis.del(idemKey);
  throw invalidToken('access token already used for another payment');
}

/** Which approved payment_initiation detail the body must equal; the reason when it does not. */
function mismatchReason(body: PaymentBody, details: PaymentInitiation[]): string | undefined {
  const detail = details[0];
  if (detail === undefined) return 'no_authorized_payment';
  if (toMinorUnits(detail.instructedAmount.amount) !== toMinorUnits(body.amount)) return 'amount_mismatch';
  if (detail.instructedAmount.currency !== body.currency) return 'currency_mismatch';
  if (detail.creditorAccount.iban !== body.creditor.iban) return 'creditor_mismatch';
  return undefined;
}

/**
 * Accepts (and books the transfer) or rejects the payment, storing the answer under the claimed key
 * in the same MULTI. RFC 9396 §9: the resource server enforces the approved details.
 */
async function bookPayment(
  context: CreatePaymentContext,
  payment: {
    token: JWTPayload;
    clientId: string;
    idempotencyKey: string;
    idemKey: string;
    fingerprint: string;
    body: PaymentBody;
  },
): Promise<StoredAnswer> {
  const { token, body, fingerprint } = payment;
  const details = z.array(paymentInitiationSchema).catch([]).parse(token.authorization_details);
  const id = `bp_${randomBytes(12).toString('base64url')}`;
  const reason = mismatchReason(body, details);
  const answer: StoredAnswer =
    reason === undefined
      ? { state: 'done', fingerprint, status: 201, body: { id, status: 'accepted' } }
      : { state: 'done', fingerprint, status: 422, body: { id, status: 'rejected', reason } };
  const multi = context.redis.multi().set(payment.idemKey, JSON.stringify(answer), 'KEEPTTL');
  if (reason === undefined) {
    const transfer: Transfer = {
      bankPaymentId: id,
      clientId: payment.clientId,
      certThumbprint: String(boundThumbprint(token)),
      idempotencyKey: payment.idempotencyKey,
      amount: body.amount,
      currency: body.currency,
      creditorIban: body.creditor.iban,
      endToEndId: body.end_to_end_id,
    };
    multi.rpush(context.keys.transfers(), JSON.stringify(transfer));
  }
  await multi.exec();
  context.log(
    reason === undefined
      ? `[bank] transfer ${body.currency} ${body.amount} to ${body.creditor.name} accepted`
      : `[bank] payment rejected: ${reason}`,
  );
  return answer;
}
