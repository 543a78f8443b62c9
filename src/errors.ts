import { PROBLEMS, type ProblemCode } from './problem-codes.js';

export interface AppErrorExtra {
  retryAfterSeconds?: number;
  errors?: { path: string; message: string }[];
  /** Only for `bad_request`: the 4xx status the request parser chose (e.g. 403 for a failed verify). */
  status?: number;
  /** The `WWW-Authenticate` challenge a 401 carries (RFC 9110 §11.6.1). */
  wwwAuthenticate?: string;
}

/**
 * The one error class of the service. `code` is stable snake_case from the catalogue in
 * problem-codes.ts and is what clients match on; `status` comes from there; `cause` is for logs
 * only and never reaches a response.
 */
export class AppError extends Error {
  override readonly name = 'AppError';
  readonly status: number;
  constructor(
    readonly code: ProblemCode,
    message: string,
    readonly extra: AppErrorExtra = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = extra.status ?? PROBLEMS[code].status;
  }
}

/** 503 `store_unavailable` with Retry-After: the store cannot take or tell this now; `cause` is for the log. */
export function storeUnavailable(cause?: unknown): AppError {
  return new AppError(
    'store_unavailable',
    'The payment store is unavailable right now; try again shortly.',
    { retryAfterSeconds: 2 },
    cause === undefined ? undefined : { cause },
  );
}
