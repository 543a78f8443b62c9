import type { RequestHandler } from 'express';
import { markFailed, requestParent, SpanKind, startSpan } from '../tracing.js';
import { headerBearer, isShopKey } from './bearer.js';

/**
 * One SERVER span per request (OpenTelemetry HTTP semantic conventions), named `METHOD /route` once
 * the route is known. It records the path without the query string (`?client_secret=` lives there)
 * and no header at all (the shop key and client secrets travel in `Authorization`). The shop
 * backend's `traceparent` (a request with the shop key) is continued, so its own trace reaches into
 * its checkout; anyone else's is only linked (see `requestParent`). Mounted only while tracing is on.
 */
export function traceRequests(shopApiKey: string | undefined): RequestHandler {
  return (req, res, next) => {
    const { span, run } = startSpan(req.method, {
      kind: SpanKind.SERVER,
      ...requestParent(req.headers, isShopKey(headerBearer(req), shopApiKey)),
      attributes: { 'http.request.method': req.method, 'url.path': req.path, 'url.scheme': req.protocol },
    });
    res.once('close', () => {
      const route = (req.route as { path?: unknown } | undefined)?.path;
      if (typeof route === 'string') {
        span.updateName(`${req.method} ${route}`);
        span.setAttribute('http.route', route);
      }
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) markFailed(span, String(res.statusCode));
      span.end();
    });
    run(next);
  };
}
