import type { AuthenticationRequestRecord } from './requests.js';

/**
 * Optional push of new authentication requests to a Gotify server, as the reference tutorial's
 * "Gotify notification method" pops the request up on the phone; the console line stays as well.
 * Fire-and-forget: the CIBA request never waits for Gotify, and a failure is one log line that
 * never carries the application token (it travels in the X-Gotify-Key header, never in the URL).
 * @see https://gotify.net/api-docs#/message/createMessage
 * @see https://gotify.net/docs/msgextras#clientnotification
 */
export interface GotifyOptions {
  /** Base URL of the Gotify server, e.g. https://push.example.org or http://127.0.0.1:8080/gotify. */
  url: string;
  /** An application token (Gotify "Apps"), allowed to create messages. */
  token: string;
  /** Default 5000 ms; the push is abandoned after this long. */
  timeoutMs?: number;
  /** Gotify priority 0–10; default 8, high enough for Android to show a heads-up notification. */
  priority?: number;
}

export interface GotifyMessage {
  title: string;
  message: string;
  priority: number;
  extras: { 'client::notification': { click: { url: string } } };
}

export interface GotifyNotifier {
  /** Starts the push and returns at once; never throws. */
  notify(record: AuthenticationRequestRecord, approvalUrl: string): void;
  /** Waits for pushes still in flight (each bounded by the timeout). */
  drain(): Promise<void>;
}

/** The message endpoint under the base URL, which may carry a path (Gotify behind a reverse proxy). */
export function gotifyMessageUrl(base: string): URL {
  const url = new URL(base);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`gotify: ${url.protocol} URLs are not supported`);
  if (url.username !== '' || url.password !== '') throw new Error('gotify: the URL must not hold credentials');
  if (url.search !== '' || url.hash !== '') throw new Error('gotify: the URL must not hold a query or fragment');
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/message`;
  return url;
}

/** What the phone shows; never the auth_req_id (only the bank app's own request id, in the link). */
export function buildGotifyMessage(
  record: AuthenticationRequestRecord,
  approvalUrl: string,
  priority: number,
): GotifyMessage {
  const money = record.amount === '' ? 'a request' : `${record.currency} ${record.amount}`;
  const code = record.bindingMessage === '' ? '' : ` Code ${record.bindingMessage}.`;
  return {
    title: `${record.clientName}: approve ${money}?`,
    message: `${record.clientName} asks "${record.login}" to approve ${money}.${code} Open the bank app to approve or deny.`,
    priority,
    extras: { 'client::notification': { click: { url: approvalUrl } } },
  };
}

/** Duck-typed, not `instanceof Error`: fetch's errors may come from another realm (jest's VM modules). */
function describeFailure(error: unknown): string {
  const failure = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: unknown;
    message?: unknown;
    cause?: unknown;
  };
  if (failure.name === 'TimeoutError' || failure.name === 'AbortError') return 'timed out';
  const code = (failure.cause as { code?: unknown } | undefined)?.code;
  const message = typeof failure.message === 'string' ? failure.message : 'unknown error';
  return typeof code === 'string' ? `${message} (${code})` : message;
}

export function createGotifyNotifier(options: GotifyOptions, log: (line: string) => void): GotifyNotifier {
  const endpoint = gotifyMessageUrl(options.url);
  if (options.token === '') throw new Error('gotify: the token is empty');
  const timeoutMs = options.timeoutMs ?? 5000;
  const priority = options.priority ?? 8;
  const inFlight = new Set<Promise<void>>();
  // Belt and braces: a failure line is built from error messages, which should not hold the token.
  const redact = (line: string): string => line.split(options.token).join('[token]');

  async function push(record: AuthenticationRequestRecord, approvalUrl: string): Promise<void> {
    try {
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-gotify-key': options.token },
        body: JSON.stringify(buildGotifyMessage(record, approvalUrl, priority)),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'error',
      });
      await res.body?.cancel();
      if (!res.ok) log(redact(`[bank] gotify push for request ${record.id} failed: HTTP ${res.status}`));
    } catch (error) {
      log(redact(`[bank] gotify push for request ${record.id} failed: ${describeFailure(error)}`));
    }
  }

  return {
    notify(record, approvalUrl) {
      const task = push(record, approvalUrl);
      inFlight.add(task);
      void task.finally(() => inFlight.delete(task));
    },
    async drain() {
      await Promise.all(inFlight);
    },
  };
}
