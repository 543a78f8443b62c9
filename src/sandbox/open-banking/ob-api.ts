import type { IncomingMessage, ServerResponse } from 'node:http';
import { getResource, postConsent, postPayment, type ObApiDeps, type ObHandlerContext } from './ob-handlers.js';
import { createTokenVerifier, ObError, sendObError } from './ob-http.js';

export type { ObApiDeps } from './ob-handlers.js';

/**
 * The sandbox bank's Open Banking UK Payment Initiation API (v3.1.10, domestic payments), served
 * under `{apiUrl}/open-banking/v3.1/pisp` on the OP's mTLS server:
 * - POST /domestic-payment-consents (client-credentials token) → AwaitingAuthorisation
 * - GET  /domestic-payment-consents/{ConsentId}
 * - POST /domestic-payments (the CIBA access token of that consent, identical Initiation) → Pending;
 *   the consent becomes Consumed
 * - GET  /domestic-payments/{DomesticPaymentId} → AcceptedSettlementCompleted once the settle delay passed
 * POSTs need `x-idempotency-key` (a replay returns the same resource, never a second one) and,
 * for clients with registered keys, a valid `x-jws-signature`. Errors are OBErrorResponse1.
 */
export const OB_API_PATH = '/open-banking/v3.1/pisp';

export interface ObApi {
  /** `path` is below OB_API_PATH, e.g. `/domestic-payments/sdpp-…`. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
}

const ENDPOINT = /^\/(domestic-payment-consents|domestic-payments)(?:\/([A-Za-z0-9_-]{1,64}))?$/;

async function route(
  context: ObHandlerContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const match = ENDPOINT.exec(path);
  const kind = match?.[1] as 'domestic-payment-consents' | 'domestic-payments' | undefined;
  if (!kind) throw new ObError(404, 'UK.OBIE.NotFound', 'no such endpoint');
  const id = match?.[2];
  if (id !== undefined && req.method === 'GET') return getResource(context, req, res, kind, id);
  if (id === undefined && req.method === 'POST') {
    return kind === 'domestic-payments' ? postPayment(context, req, res) : postConsent(context, req, res);
  }
  throw new ObError(405, 'UK.OBIE.NotAllowed', 'method not allowed');
}

export function createObApi(deps: ObApiDeps): ObApi {
  const context: ObHandlerContext = {
    ...deps,
    base: `${deps.apiUrl}${OB_API_PATH}`,
    verifyAccessToken: createTokenVerifier({ issuer: deps.issuer, audience: deps.apiUrl, jwks: deps.jwks }),
  };
  return {
    async handle(req, res, path) {
      try {
        await route(context, req, res, path);
      } catch (error) {
        if (error instanceof ObError) sendObError(req, res, error);
        else {
          deps.log(`[bank] open banking API error: ${error instanceof Error ? error.message : 'unknown'}`);
          sendObError(req, res, new ObError(500, 'UK.OBIE.UnexpectedError', 'unexpected error'));
        }
      }
    },
  };
}
