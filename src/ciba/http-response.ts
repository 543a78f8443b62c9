import type { Dispatcher } from 'undici';

/**
 * Small helpers shared by the bank-facing clients: Retry-After parsing and reading the small JSON
 * answers of the bank without trusting their shape.
 */

/** Upper bound on what we honour from Retry-After, so a broken header cannot park work for days. */
const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * Parses a Retry-After header value into milliseconds from `nowMs`: either delay-seconds or an HTTP-date.
 * Returns undefined for a missing or unreadable value; a date in the past gives 0.
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3
 */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
  // HTTP-date always names a weekday and GMT; Date.parse alone would accept "1" or "2026".
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - nowMs), MAX_RETRY_AFTER_MS);
}

/** Retry-After as whole seconds (rounded up), for answers that pass it on to an HTTP client. */
export function parseRetryAfterSeconds(value: string | string[] | undefined, nowMs: number): number | undefined {
  const ms = parseRetryAfter(value, nowMs);
  return ms === undefined ? undefined : Math.ceil(ms / 1000);
}

/** True when the response declares a JSON media type (application/json or any +json). */
export function isJsonContentType(headers: Dispatcher.ResponseData['headers']): boolean {
  const value = headers['content-type'];
  const type = (Array.isArray(value) ? value[0] : value)?.split(';')[0]?.trim().toLowerCase();
  return type === 'application/json' || (type?.endsWith('+json') ?? false);
}

/** Reads a JSON object body; undefined when the body is not a JSON object. Never throws on bad input. */
export async function readJsonObject(response: Dispatcher.ResponseData): Promise<Record<string, unknown> | undefined> {
  return parseJsonObject(await response.body.text());
}

/** A JSON object from text; undefined when the text is missing or not a JSON object. Never throws. */
export function parseJsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The OAuth error object of an error answer (RFC 6749 §5.2), or undefined when there is none. */
export function readOAuthError(
  body: Record<string, unknown> | undefined,
): { error: string; errorDescription?: string } | undefined {
  if (!body || typeof body.error !== 'string' || body.error.length === 0) return undefined;
  return typeof body.error_description === 'string'
    ? { error: body.error, errorDescription: body.error_description }
    : { error: body.error };
}

/** Discards a body we will not read, so the keep-alive connection goes back to the pool. */
export async function discardBody(response: Dispatcher.ResponseData): Promise<void> {
  try {
    await response.body.dump();
  } catch {
    // a broken body only matters to the connection, which undici already closed
  }
}
