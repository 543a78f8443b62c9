import { createHash, randomBytes, type X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { JWK, JWTPayload } from 'jose';
import { z } from 'zod';
import type { SandboxKeys } from './keys.js';
import { paymentInitiationSchema, toMinorUnits } from './payment-details.js';
import type { PaymentInitiation } from './payment-details.js';
import { verifiedPeerCertificate } from './provider.js';

/**
 * The sandbox bank's payment API (DESIGN.md "Payment API"), served on the OP's mTLS server:
 * `POST {apiUrl}/payments` with a certificate-bound JWT access token, and the reconciliation lookup
 * `GET {apiUrl}/payments?end_to_end_id=` with the client certificate alone.
 *
 * Answers:
 * - 401 `invalid_token`: no or bad token, a token that is not certificate-bound, a TLS client
 *   certificate that is not the one the token is bound to (RFC 8705 §3, RFC 6750 §3.1), or a token
 *   already spent on another payment (one approval pays one payment).
 * - 400: no Idempotency-Key, or a malformed body.
 * - 201 `{id, status: "accepted"}`: money moved, once per client and key.
 * - 422 `{id, status: "rejected", reason}`: a definite no, e.g. the body does not match the
 *   `payment_initiation` authorization_details the customer approved (RFC 9396 §9: the RS enforces
 *   the details). 422 rather than 403 because the token is fine; it is this payment that is refused.
 * - 409: the same key is still being processed; 500: the test knob failNextPayments(n).
 * A replayed key gets the stored answer (status and body) without a second transfer.
 */
export interface Transfer {
  bankPaymentId: string;
  /** Who paid (sandbox payment API only; the Open Banking API's transfers are not listed by the lookup). */
  clientId?: string;
  /** SHA-256 thumbprint of the client certificate the payment was made with (the token's cnf). */
  certThumbprint?: string;
  idempotencyKey: string;
  amount: string;
  currency: string;
  creditorIban: string;
  endToEndId: string;
}

export interface PaymentApi {
  handle(req: IncomingMessage, res: ServerResponse, path: string, query?: URLSearchParams): Promise<void>;
  transfers(): Promise<Transfer[]>;
  failNextPayments(count: number): Promise<void>;
}

export interface PaymentApiDeps {
  redis: Redis;
  keys: SandboxKeys;
  issuer: string;
  apiUrl: string;
  /** Public signing keys of the OP. */
  jwks: { keys: JWK[] };
  /** The registered client a verified TLS client certificate belongs to (its subject DN), if any. */
  clientForCertificate: (cert: X509Certificate) => string | undefined;
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

const IDEMPOTENCY_SECONDS = 7 * 24 * 3600;
const MAX_BODY = 16 * 1024;

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body.error === 'string' ? body.error : `HTTP ${status}`);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpProblem(413, { error: 'request_too_large' });
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpProblem(400, { error: 'invalid_request', error_description: 'body is not JSON' });
  }
}

function invalidToken(description: string): HttpProblem {
  return new HttpProblem(
    401,
    { error: 'invalid_token', error_description: description },
    { 'www-authenticate': `Bearer error="invalid_token", error_description="${description}"` },
  );
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

export function createPaymentApi(deps: PaymentApiDeps): PaymentApi {
  const { redis, keys } = deps;
  const publicMembers = new Set(['kty', 'n', 'e', 'crv', 'x', 'y', 'kid', 'alg', 'use']);
  const keySet = createLocalJWKSet({
    keys: deps.jwks.keys.map((jwk) => Object.fromEntries(Object.entries(jwk).filter(([k]) => publicMembers.has(k)))),
  });

  async function authenticate(req: IncomingMessage): Promise<JWTPayload> {
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(req.headers.authorization ?? '');
    if (match?.[1] === undefined) throw invalidToken('missing bearer token');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(match[1], keySet, {
        issuer: deps.issuer,
        audience: deps.apiUrl,
        algorithms: ['PS256'],
        typ: 'at+jwt',
      }));
    } catch {
      throw invalidToken('access token is not valid');
    }
    // RFC 8705 §3.1: every token must be bound, and the thumbprint of the certificate on this
    // connection must equal cnf.x5t#S256 — a token copied off the wire is worth nothing.
    const cnf = payload.cnf as { 'x5t#S256'?: unknown } | undefined;
    if (typeof cnf?.['x5t#S256'] !== 'string') throw invalidToken('access token is not certificate-bound');
    const cert = verifiedPeerCertificate(req.socket);
    const thumbprint = cert === undefined ? undefined : createHash('sha256').update(cert.raw).digest('base64url');
    if (thumbprint !== cnf['x5t#S256']) throw invalidToken('client certificate does not match the token binding');
    return payload;
  }

  async function createPayment(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const token = await authenticate(req);
    const idempotencyKey = req.headers['idempotency-key'];
    if (typeof idempotencyKey !== 'string' || idempotencyKey.length === 0 || idempotencyKey.length > 255) {
      throw new HttpProblem(400, { error: 'invalid_request', error_description: 'Idempotency-Key header required' });
    }
    const parsed = paymentBodySchema.safeParse(await readJson(req));
    if (!parsed.success) {
      throw new HttpProblem(400, { error: 'invalid_request', error_description: 'body does not match the contract' });
    }
    const body = parsed.data;
    const failing = await redis.decr(keys.failNextPayments());
    if (failing >= 0) throw new HttpProblem(500, { error: 'server_error', error_description: 'injected failure' });
    await redis.incr(keys.failNextPayments());

    const clientId = typeof token.client_id === 'string' ? token.client_id : 'unknown';
    const idemKey = keys.paymentIdempotency(clientId, idempotencyKey);
    const fingerprint = createHash('sha256').update(JSON.stringify(body)).digest('base64url');
    // SET NX: exactly one request per client and key gets to move money.
    const claimed = await redis.set(idemKey, JSON.stringify({ state: 'processing' }), 'EX', IDEMPOTENCY_SECONDS, 'NX');
    if (claimed !== null) await spendToken(token, idempotencyKey, idemKey);
    if (claimed === null) {
      const stored = JSON.parse((await redis.get(idemKey)) ?? '{"state":"processing"}') as
        StoredAnswer | { state: 'processing' };
      if (stored.state === 'processing')
        throw new HttpProblem(409, { error: 'request_in_progress' }, { 'retry-after': '1' });
      if (stored.fingerprint !== fingerprint) {
        throw new HttpProblem(422, { error: 'idempotency_key_reused', error_description: 'other body, same key' });
      }
      send(res, stored.status, stored.body, { 'idempotent-replayed': 'true' });
      return;
    }

    const details = z.array(paymentInitiationSchema).catch([]).parse(token.authorization_details);
    const id = `bp_${randomBytes(12).toString('base64url')}`;
    const reason = mismatchReason(body, details);
    const answer: StoredAnswer =
      reason === undefined
        ? { state: 'done', fingerprint, status: 201, body: { id, status: 'accepted' } }
        : { state: 'done', fingerprint, status: 422, body: { id, status: 'rejected', reason } };
    const multi = redis.multi().set(idemKey, JSON.stringify(answer), 'KEEPTTL');
    if (reason === undefined) {
      const transfer: Transfer = {
        bankPaymentId: id,
        clientId,
        certThumbprint: String((token.cnf as Record<string, unknown>)['x5t#S256']),
        idempotencyKey,
        amount: body.amount,
        currency: body.currency,
        creditorIban: body.creditor.iban,
        endToEndId: body.end_to_end_id,
      };
      multi.rpush(keys.transfers(), JSON.stringify(transfer));
    }
    await multi.exec();
    deps.log(
      reason === undefined
        ? `[bank] transfer ${body.currency} ${body.amount} to ${body.creditor.name} accepted`
        : `[bank] payment rejected: ${reason}`,
    );
    send(res, answer.status, answer.body);
  }

  /**
   * One approval pays one payment: the first new Idempotency-Key a token is used with spends it; the
   * same key replays (above), another key is refused and its claim released.
   */
  async function spendToken(token: JWTPayload, idempotencyKey: string, idemKey: string): Promise<void> {
    const tokenId = typeof token.jti === 'string' ? token.jti : JSON.stringify(token);
    const spentKey = keys.spentToken(tokenId);
    const first = await redis.set(spentKey, idempotencyKey, 'EX', IDEMPOTENCY_SECONDS, 'NX');
    if (first !== null || (await redis.get(spentKey)) === idempotencyKey) return;
    await redis.del(idemKey);
    throw invalidToken('access token already used for another payment');
  }

  /** DESIGN.md "Reconciliation": the caller's booked payments with this end-to-end id; no bearer token. */
  async function findPayments(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    const cert = verifiedPeerCertificate(req.socket);
    if (cert === undefined)
      throw new HttpProblem(401, { error: 'invalid_client', error_description: 'client certificate required' });
    const endToEndId = query.get('end_to_end_id');
    if (!endToEndId)
      throw new HttpProblem(400, { error: 'invalid_request', error_description: 'end_to_end_id required' });
    // Only the caller's payments: those of the client its certificate names, or made with this certificate.
    const clientId = deps.clientForCertificate(cert);
    const thumbprint = createHash('sha256').update(cert.raw).digest('base64url');
    const mine = (t: Transfer) =>
      t.certThumbprint === thumbprint || (clientId !== undefined && t.clientId === clientId);
    const booked = (await transfers()).filter((t) => mine(t) && t.endToEndId === endToEndId);
    send(res, 200, {
      payments: booked.map((t) => ({ id: t.bankPaymentId, status: 'accepted', end_to_end_id: t.endToEndId })),
    });
  }

  async function transfers(): Promise<Transfer[]> {
    const raw = await redis.lrange(keys.transfers(), 0, -1);
    return raw.map((t) => JSON.parse(t) as Transfer);
  }

  return {
    async handle(req, res, path, query = new URLSearchParams()) {
      try {
        if (path !== '/payments') throw new HttpProblem(404, { error: 'not_found' });
        if (req.method === 'GET') {
          await findPayments(req, res, query);
          return;
        }
        if (req.method !== 'POST') throw new HttpProblem(405, { error: 'method_not_allowed' }, { allow: 'GET, POST' });
        await createPayment(req, res);
      } catch (error) {
        if (error instanceof HttpProblem) send(res, error.status, error.body, error.headers);
        else {
          deps.log(`[bank] payment API error: ${error instanceof Error ? error.message : 'unknown'}`);
          send(res, 500, { error: 'server_error' });
        }
      }
    },
    transfers,
    async failNextPayments(count) {
      await redis.set(keys.failNextPayments(), String(count));
    },
  };
}
