import { AppError } from '../errors.js';
import { addressLimitKey } from '../net-address.js';
import type { Catalog } from './catalog.js';
import type { AdmissionTicket, CheckoutAdmission } from './ports.js';
import type { CheckoutService } from './checkout.js';
import { claimKey, NO_OUTCOME, runOnce, type Checkout, type ClaimedRunDeps } from './claimed-run.js';
import type { StoredResponse } from './idempotency.js';
import type { PaymentView } from './payment.js';
import { normaliseLoginHint } from './login-hint.js';
import { sha256 } from '../crypto/hashing.js';
import { newClaimOwner } from '../crypto/random-ids.js';

/**
 * Who calls: the shop's backend with `SHOP_API_KEY`, an anonymous storefront, or a caller whose
 * credentials are not the shop key (treated as anonymous; see `assertMayAnnotate`).
 */
export type Caller = 'shop' | 'anonymous' | 'bad_credentials';

export interface CheckoutOrder {
  items: { sku: string; quantity: number }[];
  loginHint: string;
  callbackUrl?: string | undefined;
  metadata?: Record<string, string> | undefined;
}

export interface StartCheckoutRequest {
  caller: Caller;
  /** The client's address as the trusted proxies tell it; idempotency and limits are per address. */
  clientAddress: string;
  idempotencyKey: string | null;
  order: CheckoutOrder;
  requestId: string;
}

/** The answer to send: the new payment (202), or a stored answer replayed. */
export interface CheckoutAnswer extends StoredResponse {
  replayed: boolean;
}

export interface StartCheckoutDeps extends ClaimedRunDeps {
  catalog: Catalog;
  checkout: CheckoutService;
  admission: CheckoutAdmission;
  callbackAllowedOrigins: readonly string[];
  countOutcome: (outcome: string) => void;
}

/**
 * POST /checkout as a story: check who may say what, price the cart, claim the Idempotency-Key,
 * admit the customer (limits, pending requests, cool-down), ask the bank, and keep the answer for
 * a retry. Everything refused before the bank is asked (validation, `shop_key_required`, an unknown
 * sku, a limit) stores no idempotency record: a retry with a fixed request runs afresh. After the
 * bank may have been asked, the claim is settled, never freed blindly (claimed-run.ts).
 */
export function createStartCheckout(deps: StartCheckoutDeps) {
  return async function startCheckout(request: StartCheckoutRequest): Promise<CheckoutAnswer> {
    try {
      const { order, caller } = request;
      assertMayAnnotate(caller, order);
      assertCallbackAllowed(order.callbackUrl, deps.callbackAllowedOrigins);
      const priced = deps.catalog.price(order.items);
      const customer = normaliseLoginHint(order.loginHint);
      const scope = caller === 'shop' ? 'shop' : `ip:${request.clientAddress}`;
      const key = request.idempotencyKey;
      // The owner id is this request's alone: it ends its own claim, never a newer request's.
      const claim = key === null ? null : { scope, key, owner: newClaimOwner() };
      if (claim) {
        // A takeover that finds the payment keeps the customer's place for it (push bombing, issue 11.6).
        const found = { ...NO_OUTCOME, created: keepPlace(deps.admission, customer.limitKey) };
        const replay = await claimKey(deps, claim, fingerprint(order), found);
        if (replay) return { ...replay, replayed: true };
      }
      let ticket: AdmissionTicket | null = null;
      const run = async ({ beforeBank, beforeCreate }: Parameters<Checkout>[0]) => {
        ticket = await deps.admission.admit({
          clientAddress: caller === 'shop' ? null : addressLimitKey(request.clientAddress),
          customerKey: customer.limitKey,
        });
        return deps.checkout.startCheckout({
          priced,
          loginHint: customer.loginHint,
          callbackUrl: order.callbackUrl,
          metadata: order.metadata,
          requestId: request.requestId,
          beforeBank,
          beforeCreate,
        });
      };
      // The customer's place follows the payment: kept (confirmed) whenever it exists, even when a
      // fault hid its create, and given back only when none can exist (push bombing, issue 11.6).
      const answer = await runOnce(deps, claim, run, {
        created: async (payment) => ticket?.confirm(payment.id, Date.parse(payment.expires_at)),
        none: async () => ticket?.release(),
        bankNotAsked: async () => ticket?.refund(),
      });
      deps.countOutcome('accepted');
      return { ...answer, replayed: false };
    } catch (err) {
      deps.countOutcome(err instanceof AppError ? err.code : 'internal_error');
      throw err;
    }
  };
}

function keepPlace(admission: CheckoutAdmission, customerKey: string) {
  return (payment: PaymentView) =>
    admission.keep({ customerKey, paymentId: payment.id, expiresAt: Date.parse(payment.expires_at) });
}

/**
 * `metadata` and `callback_url` say what a payment is for and who hears of it, so only the shop may
 * set them (issue 11.1): an anonymous storefront checkout is the catalog-priced cart and nothing
 * else. 401, not 403: the request lacks the credentials that would make it acceptable, and sending
 * the shop key fixes it (RFC 9110 §15.5.2; §15.5.4 keeps 403 for credentials that do not suffice).
 * A wrong key is anonymous with bad credentials: the same refusal (no oracle for the key), and the
 * route adds `error="invalid_token"` to the challenge (RFC 6750 §3.1).
 */
function assertMayAnnotate(caller: Caller, order: CheckoutOrder): void {
  if (caller === 'shop') return;
  const fields = [
    ...(order.metadata !== undefined ? ['metadata'] : []),
    ...(order.callbackUrl !== undefined ? ['callback_url'] : []),
  ];
  if (fields.length === 0) return;
  throw new AppError(
    'shop_key_required',
    `${fields.join(' and ')} may only be set by the shop's backend with its API key.`,
    {
      errors: fields.map((f) => ({ path: `$.${f}`, message: 'needs Authorization: Bearer <SHOP_API_KEY>' })),
      wwwAuthenticate:
        caller === 'bad_credentials' ? 'Bearer realm="shop", error="invalid_token"' : 'Bearer realm="shop"',
    },
  );
}

function assertCallbackAllowed(url: string | undefined, allowed: readonly string[]): void {
  if (url === undefined || allowed.includes(new URL(url).origin)) return;
  throw new AppError(
    'callback_origin_not_allowed',
    'callback_url must be on an origin listed in CALLBACK_ALLOWED_ORIGINS.',
    { errors: [{ path: '$.callback_url', message: 'origin not allowed' }] },
  );
}

/** The same order, whatever the order of its JSON fields. */
function fingerprint(order: CheckoutOrder): string {
  return sha256(
    JSON.stringify([order.items, order.loginHint, order.callbackUrl ?? null, Object.entries(order.metadata ?? {})]),
  );
}
