import type { Request } from 'express';
import { timingSafeEqual } from 'node:crypto';
import { AppError } from '../errors.js';
import type { PaymentRecord } from '../payments/payment.js';
import { matchesHash } from '../payments/secrets.js';
import type { PaymentStore } from '../store/payment-store.js';
import { paymentIdSchema } from './schemas.js';

function headerBearer(req: Request): string | null {
  const header = req.get('authorization');
  return header?.startsWith('Bearer ') ? header.slice(7).trim() : null;
}

/** A payment's client secret may come in the query (EventSource cannot set headers); the shop key never does. */
function bearer(req: Request): string | null {
  const fromHeader = headerBearer(req);
  if (fromHeader !== null) return fromHeader;
  const query = req.query.client_secret;
  return typeof query === 'string' ? query : null;
}

export function isShopKey(presented: string | null, shopApiKey: string | undefined): boolean {
  if (!presented || !shopApiKey) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(shopApiKey);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function requireShopKey(req: Request, shopApiKey: string | undefined): void {
  if (!isShopKey(headerBearer(req), shopApiKey))
    throw new AppError('unauthorized', 'This route needs the shop API key.');
}

const NOT_FOUND = () => new AppError('payment_not_found', 'No such payment.');

/**
 * Loads a payment for a caller holding its client secret or the shop key. Anything else is the same
 * 404 as an unknown id, so ids cannot be probed (DESIGN.md GET /payments/{id}).
 */
export async function loadAuthorizedPayment(
  req: Request,
  deps: { store: PaymentStore; shopApiKey: string | undefined },
): Promise<{ payment: PaymentRecord; asShop: boolean }> {
  const id = paymentIdSchema.safeParse(req.params.id);
  const presented = bearer(req);
  if (!id.success || !presented) throw NOT_FOUND();
  const payment = await deps.store.get(id.data);
  if (!payment) throw NOT_FOUND();
  if (isShopKey(headerBearer(req), deps.shopApiKey)) return { payment, asShop: true };
  if (matchesHash(presented, payment.secretHash)) return { payment, asShop: false };
  throw NOT_FOUND();
}
