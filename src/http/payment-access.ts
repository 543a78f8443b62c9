import type { Request } from 'express';
import { AppError } from '../errors.js';
import type { PaymentRecord } from '../payments/payment.js';
import { matchesHash } from '../crypto/hashing.js';
import type { PaymentStore } from '../payments/ports.js';
import { headerBearer, isShopKey } from './bearer.js';
import { paymentIdSchema } from './schemas.js';

/**
 * The presented secret: the `Authorization: Bearer` header, and on the event stream alone also
 * `?client_secret=`, because EventSource cannot set headers (WHATWG HTML §9.2). Anywhere else a
 * secret in the query is ignored: URLs end up in proxy logs, browser history and Referer headers
 * (RFC 6750 §5.3 "Don't pass bearer tokens in page URLs"). The shop key never comes in the query.
 */
function presentedSecret(req: Request, allowQuerySecret: boolean): string | null {
  const fromHeader = headerBearer(req);
  if (fromHeader !== null || !allowQuerySecret) return fromHeader;
  const query = req.query.client_secret;
  return typeof query === 'string' ? query : null;
}

export function requireShopKey(req: Request, shopApiKey: string | undefined): void {
  if (!isShopKey(headerBearer(req), shopApiKey))
    throw new AppError('unauthorized', 'This route needs the shop API key.', {
      wwwAuthenticate: 'Bearer realm="shop"',
    });
}

const NOT_FOUND = () => new AppError('payment_not_found', 'No such payment.');

/**
 * Loads a payment for a caller holding its client secret or the shop key. Anything else is the same
 * 404 as an unknown id, so ids cannot be probed (DESIGN.md GET /payments/{id}).
 */
export async function loadAuthorizedPayment(
  req: Request,
  deps: { store: PaymentStore; shopApiKey: string | undefined },
  options: { allowQuerySecret?: boolean } = {},
): Promise<{ payment: PaymentRecord; asShop: boolean }> {
  const id = paymentIdSchema.safeParse(req.params.id);
  const presented = presentedSecret(req, options.allowQuerySecret ?? false);
  if (!id.success || !presented) throw NOT_FOUND();
  const payment = await deps.store.get(id.data);
  if (!payment) throw NOT_FOUND();
  if (isShopKey(headerBearer(req), deps.shopApiKey)) return { payment, asShop: true };
  if (matchesHash(presented, payment.secretHash)) return { payment, asShop: false };
  throw NOT_FOUND();
}
