import { Agent, request } from 'undici';
import { assertAllowedUrl, BlockedAddressError, createGuardedLookup } from './ssrf-guard.js';
import { inSpan, SpanKind, traceHeaders, tracingActive } from '../tracing.js';

/** What one POST to a receiver came to. */
export type PostOutcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'gone'; status: 410 }
  | { kind: 'retry'; status: number | null; error: string; retryAfterMs: number | null }
  | { kind: 'blocked'; error: string };

export interface WebhookClientOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  /** Sockets per receiver origin: one slow receiver holds at most this many. */
  connectionsPerOrigin: number;
}

export interface WebhookClient {
  post(url: string, headers: Record<string, string>, body: string): Promise<PostOutcome>;
  close(): Promise<void>;
}

/** Longest Retry-After honoured: a receiver cannot park a delivery for longer than a day. */
const MAX_RETRY_AFTER_MS = 24 * 3600 * 1000;
/** Receivers' answers are read and dropped; a large one is cut short. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/** Seconds or an HTTP-date (RFC 9110 §10.2.3), as milliseconds from `now`. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return null;
  const ms = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) * 1000 : Date.parse(raw) - now;
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : null;
}

function isBlocked(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof BlockedAddressError) return true;
  }
  return false;
}

/** A short, secret-free reason for the delivery record: undici's error code, or the error's name. */
function describeError(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT')
    return 'timeout';
  if ((err as { name?: unknown }).name === 'TimeoutError') return 'timeout';
  if (typeof code === 'string') return code.toLowerCase();
  return err instanceof Error ? err.name : 'network_error';
}

function classifyStatus(status: number, retryAfter: string | string[] | undefined): PostOutcome {
  if (status >= 200 && status < 300) return { kind: 'delivered', status };
  if (status === 410) return { kind: 'gone', status };
  // DESIGN.md: redirects are not followed; they count as a failed attempt.
  const error = status >= 300 && status < 400 ? 'redirect_not_followed' : `http_${status}`;
  return { kind: 'retry', status, error, retryAfterMs: parseRetryAfter(retryAfter, Date.now()) };
}

/**
 * The HTTP side of webhook delivery: its own undici Agent (capped sockets per origin, timeouts,
 * redirects never followed: undici's `request` follows none without a redirect interceptor), with
 * the SSRF guard in the socket's DNS lookup so the checked address is the one connected to.
 */
export function createWebhookClient(options: WebhookClientOptions): WebhookClient {
  const { timeoutMs, allowPrivate } = options;
  const agent = new Agent({
    connections: options.connectionsPerOrigin,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    keepAliveTimeout: 10_000,
    connect: { timeout: timeoutMs, lookup: createGuardedLookup(allowPrivate) },
  });

  async function send(url: string, headers: Record<string, string>, body: string): Promise<PostOutcome> {
    try {
      assertAllowedUrl(new URL(url), allowPrivate);
      const res = await request(url, {
        dispatcher: agent,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'ciba-checkout-webhooks/1',
          ...traceHeaders(),
          ...headers,
        },
        body,
        // Bounds the whole exchange, a slowly dribbling answer included.
        signal: AbortSignal.timeout(timeoutMs * 2),
      });
      await res.body.dump({ limit: MAX_RESPONSE_BYTES }).catch(() => undefined);
      return classifyStatus(res.statusCode, res.headers['retry-after']);
    } catch (err) {
      if (isBlocked(err)) return { kind: 'blocked', error: 'blocked_address' };
      return { kind: 'retry', status: null, error: describeError(err), retryAfterMs: null };
    }
  }

  return {
    async post(url, headers, body) {
      if (!tracingActive()) return send(url, headers, body);
      // The host only: a shop's webhook URL may carry its own credentials in the path or query.
      const host = URL.canParse(url) ? new URL(url).hostname : '';
      const attributes = { 'http.request.method': 'POST', 'server.address': host };
      return inSpan('webhook delivery', { kind: SpanKind.CLIENT, attributes }, async (span) => {
        const outcome = await send(url, headers, body);
        span.setAttribute('webhook.outcome', outcome.kind);
        return outcome;
      });
    },
    async close() {
      await agent.destroy();
    },
  };
}
