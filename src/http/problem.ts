import type { ErrorRequestHandler, Response } from 'express';
import { ZodError } from 'zod';
import { AppError, storeUnavailable } from '../errors.js';
import type { Logger } from '../logger.js';
import { PROBLEM_TYPE_BASE, statusTitle, type ProblemCode } from '../problem-codes.js';

/** RFC 9457 problem details, plus our stable `code` and, for validation, `errors[]` with JSON paths. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
  errors?: { path: string; message: string }[];
  request_id?: string;
}

export function problemBody(error: AppError): Problem {
  return {
    type: `${PROBLEM_TYPE_BASE}${error.code}`,
    title: statusTitle(error.status),
    status: error.status,
    detail: error.message,
    code: error.code,
    ...(error.extra.errors ? { errors: error.extra.errors } : {}),
  };
}

export function sendProblem(res: Response, error: AppError): void {
  const body = problemBody(error);
  const requestId = res.getHeader('x-request-id');
  if (typeof requestId === 'string') body.request_id = requestId;
  // RFC 9110 §15.5.2: a 401 names the scheme that would work (RFC 6750 §3 for Bearer).
  if (error.status === 401 && !res.hasHeader('WWW-Authenticate'))
    res.setHeader('WWW-Authenticate', 'Bearer realm="ciba-checkout"');
  if (error.extra.retryAfterSeconds !== undefined)
    res.setHeader('Retry-After', String(Math.ceil(error.extra.retryAfterSeconds)));
  if (error.extra.wwwAuthenticate !== undefined) res.setHeader('WWW-Authenticate', error.extra.wwwAuthenticate);
  res.status(error.status).type('application/problem+json').send(JSON.stringify(body));
}

/** `$.items[0].sku` style paths, as DESIGN.md asks for. */
export function jsonPath(path: readonly PropertyKey[]): string {
  return '$' + path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
}

export function validationError(err: ZodError, where = 'body'): AppError {
  const errors = err.issues.slice(0, 20).map((i) => ({ path: jsonPath(i.path), message: i.message }));
  return new AppError('validation_failed', `The request ${where} is not valid.`, { errors });
}

/** Errors thrown by body-parser and friends carry `status`/`type`. */
function fromHttpError(err: { status?: unknown; type?: unknown }): AppError | null {
  if (err.type === 'entity.too.large') return new AppError('body_too_large', 'The request body is larger than 16 KiB.');
  if (err.type === 'entity.parse.failed') return new AppError('malformed_json', 'The request body is not valid JSON.');
  if (err.type === 'charset.unsupported' || err.type === 'encoding.unsupported')
    return new AppError('unsupported_encoding', 'The request body encoding is not supported.');
  if (typeof err.status === 'number' && err.status >= 400 && err.status < 500)
    return new AppError('bad_request', 'The request could not be read.', { status: err.status });
  return null;
}

/**
 * The one central error handler: everything becomes problem+json; causes and stacks only reach the log.
 * `isStoreUnavailable` tells the store's "not there right now" errors (503 with Retry-After) from bugs.
 */
export function createErrorHandler(logger: Logger, isStoreUnavailable: (err: unknown) => boolean): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    let problem: AppError;
    if (err instanceof AppError) problem = err;
    else if (err instanceof ZodError) problem = validationError(err);
    else if (isStoreUnavailable(err)) problem = storeUnavailable();
    else
      problem =
        (typeof err === 'object' && err !== null && fromHttpError(err)) ||
        new AppError('internal_error', 'Something went wrong on our side.');
    const log = problem.status >= 500 ? logger.error.bind(logger) : logger.debug.bind(logger);
    log({ err: problem.status >= 500 ? err : undefined, code: problem.code, path: req.path }, 'request failed');
    sendProblem(res, problem);
  };
}
