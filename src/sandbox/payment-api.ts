import type { X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { JWK } from 'jose';
import { createJwtAccessTokenCheck } from './access-tokens.js';
import { createPayment, type CreatePaymentContext } from './create-payment.js';
import type { SandboxKeys } from './keys.js';
import { HttpProblem, send } from './payment-api-http.js';
import { certificateThumbprint, verifiedPeerCertificate } from './peer-certificate.js';
import { readTransfers, type Transfer } from './transfers.js';

export type { Transfer } from './transfers.js';

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

/** DESIGN.md "Reconciliation": the caller's booked payments with this end-to-end id; no bearer token. */
async function findPayments(
  deps: PaymentApiDeps,
  req: IncomingMessage,
  res: ServerResponse,
  query: URLSearchParams,
): Promise<void> {
  const cert = verifiedPeerCertificate(req.socket);
  if (cert === undefined)
    throw new HttpProblem(401, { error: 'invalid_client', error_description: 'client certificate required' });
  const endToEndId = query.get('end_to_end_id');
  if (!endToEndId)
    throw new HttpProblem(400, { error: 'invalid_request', error_description: 'end_to_end_id required' });
  // Only the caller's payments: those of the client its certificate names, or made with this certificate.
  const clientId = deps.clientForCertificate(cert);
  const thumbprint = certificateThumbprint(cert);
  const isCallers = (transfer: Transfer) =>
    transfer.certThumbprint === thumbprint || (clientId !== undefined && transfer.clientId === clientId);
  const booked = (await readTransfers(deps.redis, deps.keys)).filter(
    (transfer) => isCallers(transfer) && transfer.endToEndId === endToEndId,
  );
  send(res, 200, {
    payments: booked.map((transfer) => ({
      id: transfer.bankPaymentId,
      status: 'accepted',
      end_to_end_id: transfer.endToEndId,
    })),
  });
}

export function createPaymentApi(deps: PaymentApiDeps): PaymentApi {
  const context: CreatePaymentContext = {
    ...deps,
    checkJwt: createJwtAccessTokenCheck({ issuer: deps.issuer, audience: deps.apiUrl, jwks: deps.jwks }),
  };

  async function route(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams) {
    if (path !== '/payments') throw new HttpProblem(404, { error: 'not_found' });
    if (req.method === 'GET') return findPayments(deps, req, res, query);
    if (req.method !== 'POST') throw new HttpProblem(405, { error: 'method_not_allowed' }, { allow: 'GET, POST' });
    return createPayment(context, req, res);
  }

  return {
    async handle(req, res, path, query = new URLSearchParams()) {
      try {
        await route(req, res, path, query);
      } catch (error) {
        if (error instanceof HttpProblem) send(res, error.status, error.body, error.headers);
        else {
          deps.log(`[bank] payment API error: ${error instanceof Error ? error.message : 'unknown'}`);
          send(res, 500, { error: 'server_error' });
        }
      }
    },
    transfers: () => readTransfers(deps.redis, deps.keys),
    async failNextPayments(count) {
      await deps.redis.set(deps.keys.failNextPayments(), String(count));
    },
  };
}
