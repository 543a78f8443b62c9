/**
 * The catalogue of problem codes (RFC 9457 problem details plus our stable `code`): each code's
 * HTTP status and title, an example `detail` (the text the code really sends) and when it
 * happens. `AppError` takes a code from here, the error handler renders it, and the OpenAPI
 * document and `/docs` list it, so a new code is added in this one place.
 */

/** Status titles of problem documents (RFC 9110 reason phrases). */
const STATUS_TITLES = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
} as const;

export type ProblemStatus = keyof typeof STATUS_TITLES;

export interface ProblemInfo {
  status: ProblemStatus;
  /** An example `detail`, the text the code really sends. */
  detail: string;
  /** When it happens, for the docs. */
  when: string;
  /** `Retry-After` is sent with it. */
  retryAfter?: true;
}

export const PROBLEM_TYPE_BASE = 'https://ciba-checkout.dev/problems/';

/** Every `code` a problem+json answer can carry (RFC 9457 plus our stable `code`). */
export const PROBLEMS = {
  validation_failed: {
    status: 400,
    detail: 'The request body is not valid.',
    when: 'The body or a header fails validation; `errors[]` lists each JSON path.',
  },
  malformed_json: {
    status: 400,
    detail: 'The request body is not valid JSON.',
    when: 'The body cannot be parsed as JSON.',
  },
  invalid_request: {
    status: 400,
    detail: 'The notification needs an auth_req_id.',
    when: 'A ping notification without a valid `auth_req_id`.',
  },
  bad_request: { status: 400, detail: 'The request could not be read.', when: 'Any other unreadable request.' },
  unauthorized: {
    status: 401,
    detail: 'This route needs the shop API key.',
    when: 'A shop-only route called without `SHOP_API_KEY`.',
  },
  shop_key_required: {
    status: 401,
    detail: "metadata may only be set by the shop's backend with its API key.",
    when:
      'An anonymous checkout (or one with a key that is not `SHOP_API_KEY`) carrying `metadata` or `callback_url`: ' +
      'refused before the bank is asked, nothing stored, no limit used. 401 with `WWW-Authenticate: Bearer` ' +
      '(RFC 9110 §15.5.2): the shop key makes the same request acceptable.',
  },
  invalid_notification_token: {
    status: 401,
    detail: 'Unknown client_notification_token.',
    when: 'A ping notification with an unknown bearer token (never a redirect, CIBA Core §10.2).',
  },
  not_found: { status: 404, detail: 'No route for GET /nope.', when: 'No such route.' },
  delivery_not_found: {
    status: 404,
    detail: 'No such webhook delivery.',
    when: 'Unknown delivery id, or its event is no longer kept.',
  },
  payment_not_found: {
    status: 404,
    detail: 'No such payment.',
    when: 'Unknown id, or a missing or wrong client secret or shop key: the same answer, so ids cannot be probed.',
  },
  idempotency_key_in_use: {
    status: 409,
    retryAfter: true,
    detail: 'A request with this Idempotency-Key is still being processed.',
    when: 'The first request with this key has not finished yet; retry after `Retry-After`.',
  },
  payment_not_cancelable: {
    status: 409,
    detail: 'A payment in status processing can no longer be canceled.',
    when: 'Cancel after the payment reached `processing` or a final status.',
  },
  delivery_in_progress: {
    status: 409,
    detail: 'An attempt of this delivery is in progress.',
    when: 'Resend while an attempt of that delivery is running.',
  },
  webhook_target_gone: {
    status: 409,
    detail: 'The receiver answered 410 Gone; nothing more is sent to this URL.',
    when: 'Resend to a URL that answered `410 Gone`.',
  },
  payment_busy: {
    status: 409,
    detail: 'The payment is changing right now; try again.',
    when: 'Cancel raced with a status change; retry.',
  },
  body_too_large: { status: 413, detail: 'The request body is larger than 16 KiB.', when: 'Bodies over 16 KiB.' },
  unsupported_media_type: {
    status: 415,
    detail: 'Send the checkout as application/json.',
    when: 'A body that is not `application/json`.',
  },
  unsupported_encoding: {
    status: 415,
    detail: 'The request body encoding is not supported.',
    when: 'A charset or content encoding the service does not read.',
  },
  unknown_sku: {
    status: 422,
    detail: 'No item with sku "tea-99" is sold here.',
    when: 'An item that is not in the catalog.',
  },
  amount_too_large: {
    status: 422,
    detail: 'The total is larger than one payment may be.',
    when: 'The total exceeds the largest single payment.',
  },
  callback_origin_not_allowed: {
    status: 422,
    detail: 'callback_url must be on an origin listed in CALLBACK_ALLOWED_ORIGINS.',
    when: '`callback_url` on an origin not in `CALLBACK_ALLOWED_ORIGINS`.',
  },
  idempotency_key_reused: {
    status: 422,
    detail: 'This Idempotency-Key was used with a different request body.',
    when: 'The same key with another body.',
  },
  unknown_bank_user: {
    status: 422,
    detail: 'The bank does not know this customer.',
    when: 'The bank answered `unknown_user_id` to the backchannel request.',
  },
  bank_request_rejected: {
    status: 422,
    detail: 'The bank refused to start the authorization.',
    when: 'The bank refused the backchannel request for another reason.',
  },
  rate_limited: {
    status: 429,
    retryAfter: true,
    detail: 'Too many checkouts from this address; wait a little.',
    when: 'Per client address or per bank customer (`login_hint`) limit; see `Retry-After`.',
  },
  internal_error: {
    status: 500,
    detail: 'Something went wrong on our side.',
    when: 'An unexpected fault; details only reach the log.',
  },
  bank_configuration_error: {
    status: 502,
    detail: "The bank refused the shop's credentials.",
    when: "The bank rejected the shop's client authentication.",
  },
  bank_invalid_response: {
    status: 502,
    detail: 'The bank answered with something that is not a valid CIBA response.',
    when: 'No `auth_req_id` or no numeric `expires_in` in the bank answer; no token request is sent.',
  },
  bank_unavailable: {
    status: 503,
    retryAfter: true,
    detail: 'The bank cannot be reached right now.',
    when: 'The bank is down or overloaded; retry after `Retry-After`.',
  },
  store_unavailable: {
    status: 503,
    retryAfter: true,
    detail: 'The payment store is unavailable right now; try again shortly.',
    when: 'Redis cannot be reached; retry after `Retry-After`.',
  },
} as const satisfies Record<string, ProblemInfo>;

export type ProblemCode = keyof typeof PROBLEMS;

export const PROBLEM_CODES = Object.keys(PROBLEMS) as [ProblemCode, ...ProblemCode[]];

/** The HTTP reason phrase of a status, the `title` of its problem documents. */
export function statusTitle(status: number): string {
  return (STATUS_TITLES as Record<number, string | undefined>)[status] ?? 'Error';
}
