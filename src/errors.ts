/**
 * The one error class of the service. `code` is stable snake_case and is what clients match on;
 * `status` is the HTTP status it renders as; `cause` is for logs only and never reaches a response.
 */
export class AppError extends Error {
  override readonly name = 'AppError';
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly extra: {
      retryAfterSeconds?: number;
      errors?: { path: string; message: string }[];
      /** The `WWW-Authenticate` challenge a 401 carries (RFC 9110 §11.6.1). */
      wwwAuthenticate?: string;
    } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
