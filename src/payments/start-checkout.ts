import { AppError } from '../errors.js';
import { addressLimitKey } from '../net-address.js';
import type { Catalog } from './catalog.js';
import type { CheckoutAdmission } from './ports.js';
import type { CheckoutService } from './checkout.js';
import type { IdempotencyStore, StoredResponse } from './idempotency.js';
import { normaliseLoginHint } from './login-hint.js';
import { sha256 } from '../crypto/hashing.js';

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

export interface StartCheckoutDeps {
  catalog: Catalog;
  checkout: CheckoutService;
  idempotency: IdempotencyStore;
  admission: CheckoutAdmission;
  callbackAllowedOrigins: readonly string[];
  /** Renders a refusal as the problem document a replay sends again. */
  renderProblem: (err: AppError) => string;
  countOutcome: (outcome: string) => void;
}

/**
 * POST /checkout as a story: check who may say what, price the cart, claim the Idempotency-Key,
 * admit the customer (limits, pending requests, cool-down), ask the bank, and keep the answer for
 * a retry. Everything refused before the bank is asked (validation, `shop_key_required`, an unknown
 * sku, a limit) stores no idempotency record: a retry with a fixed request runs afresh.
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
      if (key !== null) {
        const replay = await claimKey(deps.idempotency, scope, key, fingerprint(order));
        if (replay) return { ...replay, replayed: true };
      }
      const claimed = key === null ? null : { scope, key };
      const answer = await runOnce(deps, claimed, async (bankAsked) => {
        const ticket = await deps.admission.admit({
          clientAddress: caller === 'shop' ? null : addressLimitKey(request.clientAddress),
          customerKey: customer.limitKey,
        });
        try {
          bankAsked();
          const started = await deps.checkout.startCheckout({
            priced,
            loginHint: customer.loginHint,
            callbackUrl: order.callbackUrl,
            metadata: order.metadata,
            requestId: request.requestId,
          });
          await ticket.confirm(started.payment.id, Date.parse(started.payment.expires_at));
          return started;
        } catch (err) {
          await ticket.release();
          throw err;
        }
      });
      deps.countOutcome('accepted');
      return { ...answer, replayed: false };
    } catch (err) {
      deps.countOutcome(err instanceof AppError ? err.code : 'internal_error');
      throw err;
    }
  };
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

/** Claims the key; returns the stored answer for a replay, throws for a mismatch or a request in flight. */
async function claimKey(
  store: IdempotencyStore,
  scope: string,
  key: string,
  print: string,
): Promise<StoredResponse | null> {
  const claim = await store.claim(scope, key, print);
  switch (claim.state) {
    case 'new':
      return null;
    case 'replay':
      return claim.response;
    case 'mismatch':
      throw new AppError('idempotency_key_reused', 'This Idempotency-Key was used with a different request body.');
    case 'in_flight':
      throw new AppError('idempotency_key_in_use', 'A request with this Idempotency-Key is still being processed.', {
        retryAfterSeconds: 1,
      });
  }
}

/**
 * Runs the claimed request and keeps its answer. Once the payment exists the key is never freed
 * (a retry would start a second payment); the bank's definite refusals (4xx) are kept for replay;
 * a refusal before the bank was asked (a limit, a pending request), a 429 or a fault (5xx) frees
 * the key for the retry.
 */
async function runOnce(
  deps: StartCheckoutDeps,
  claimed: { scope: string; key: string } | null,
  start: (bankAsked: () => void) => Promise<Awaited<ReturnType<CheckoutService['startCheckout']>>>,
): Promise<StoredResponse> {
  let started;
  const progress = { askedBank: false };
  try {
    started = await start(() => {
      progress.askedBank = true;
    });
  } catch (err) {
    if (claimed) {
      if (progress.askedBank && err instanceof AppError && err.status < 500 && err.status !== 429)
        await deps.idempotency.complete(claimed.scope, claimed.key, {
          status: err.status,
          body: deps.renderProblem(err),
          location: null,
        });
      else await deps.idempotency.release(claimed.scope, claimed.key);
    }
    throw err;
  }
  const response = {
    status: 202,
    body: JSON.stringify({ ...started.payment, client_secret: started.clientSecret }),
    location: `/payments/${started.payment.id}`,
  };
  if (claimed) await deps.idempotency.complete(claimed.scope, claimed.key, response);
  return response;
}
