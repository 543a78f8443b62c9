import type { Socket } from 'node:net';
import type { buildConnector } from 'undici';
import { Http1ResponseReader } from './http1-response.js';
import type { WholeResponse } from './whole-response.js';

/**
 * Issue 12.4: the token poll's own HTTP/1.1 connections to the token endpoint, one request in flight
 * on each (no pipelining). undici's general machinery (dispatcher chain, request object, header
 * validation per call, a WASM parser calling back per header field) cost about a third of a
 * poll's CPU at the default BANK_PIPELINING=1; a poll here is one prebuilt request written in one
 * socket write and its small answer read whole. TLS is undici's own connector (the bank agent's
 * certificate, CA and session cache), so the handshake is the same. Never re-sends a request: a
 * connection that breaks fails the request on it, and the caller polls again at its interval.
 */
export interface PollConnections {
  /**
   * The fixed part of a request to this origin: request line, host, connection and `headers`
   * (checked once here; built once per token requester, not per poll).
   */
  requestHead(method: string, path: string, headers: Readonly<Record<string, string>>): string;
  /**
   * Sends `head` with `body` (content-length added) and reads the answer whole. Rejects only when no
   * answer came (nothing was decided); an answer whose body broke off resolves with `text` undefined.
   */
  send(head: string, body: string): Promise<WholeResponse>;
  /** Closes every connection; requests in flight fail. */
  close(): void;
}

export interface PollConnectionsOptions {
  connect: buildConnector.connector;
  origin: URL;
  /** Most connections open at once (BANK_MAX_CONNECTIONS). */
  connections: number;
  /** A request with no byte from the bank for this long fails (BANK_TIMEOUT_MS). */
  timeoutMs: number;
  /** An idle connection is closed after this long, or sooner when the bank's Keep-Alive says so. */
  keepAliveMs: number;
  keepAliveMaxMs: number;
}

/** Nothing came back: the connection broke, timed out or answered what is not HTTP. */
export class PollConnectionError extends Error {
  constructor(
    readonly code: 'BANK_SOCKET_CLOSED' | 'BANK_TIMEOUT' | 'BANK_CLOSED',
    message: string,
  ) {
    super(message);
    this.name = 'PollConnectionError';
  }
}

/** undici's margin: close an idle connection this long before the bank's advertised keep-alive ends. */
const KEEP_ALIVE_MARGIN_MS = 2000;
/** A connection that carried a token answer rests this long before another poll (#settle). */
const TOKEN_QUIET_MS = 20;
const KEEP_ALIVE_HINT = /timeout=(\d+)/;
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** origin-form (RFC 9112 §3.2.1) in visible ASCII: nothing that could end the request line. */
const PATH = /^\/[\x21-\x7e]*$/;
/** Fields this module writes or that change the framing or the connection: never from the caller. */
const RESERVED_FIELDS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'expect',
  'te',
  'trailer',
  'upgrade',
]);

interface Waiting {
  head: string;
  body: string;
  /** When it was queued or written (ms): a poll gives up after BANK_TIMEOUT_MS waiting, 2× that in all. */
  since: number;
  resolve: (answer: WholeResponse) => void;
  reject: (err: unknown) => void;
}

/** One connection: at most one request in flight (`waiting`, read by `reader`). */
interface Connection {
  socket: Socket | null;
  waiting: Waiting | null;
  reader: Http1ResponseReader | null;
  /** Last byte sent or received while a request is in flight; when it went idle otherwise (ms). */
  lastActivity: number;
  keepAliveMs: number;
  error: Error | null;
  referenced: boolean;
  /** An answer just completed; not free before the next turn (#settle). */
  settling: boolean;
}

export function createPollConnections(options: PollConnectionsOptions): PollConnections {
  return new PollConnectionPool(options);
}

/** A small FIFO of requests waiting for a connection (shift() on a long array is O(n)). */
class WaitingQueue {
  #items: (Waiting | undefined)[] = [];
  #start = 0;
  push(waiting: Waiting): void {
    this.#items.push(waiting);
  }
  /** The oldest (queued first). */
  peek(): Waiting | undefined {
    return this.#items[this.#start];
  }
  shift(): Waiting | undefined {
    if (this.#start >= this.#items.length) return undefined;
    const waiting = this.#items[this.#start];
    this.#items[this.#start++] = undefined;
    if (this.#start > 1024 && this.#start * 2 > this.#items.length) {
      this.#items.splice(0, this.#start);
      this.#start = 0;
    }
    return waiting;
  }
}

class PollConnectionPool implements PollConnections {
  readonly #options: PollConnectionsOptions;
  readonly #all = new Set<Connection>();
  /** Free connections, the most recently used last (taken first, so the others can idle out). */
  readonly #idle: Connection[] = [];
  readonly #queue = new WaitingQueue();
  #sweeper: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(options: PollConnectionsOptions) {
    this.#options = options;
  }

  requestHead(method: string, path: string, headers: Readonly<Record<string, string>>): string {
    if (!FIELD_NAME.test(method) || !PATH.test(path)) throw new Error('invalid request line');
    let head = `${method} ${path} HTTP/1.1\r\nhost: ${this.#options.origin.host}\r\nconnection: keep-alive\r\n`;
    for (const [name, value] of Object.entries(headers)) {
      if (!FIELD_NAME.test(name) || !FIELD_VALUE.test(value) || RESERVED_FIELDS.has(name.toLowerCase()))
        throw new Error(`invalid request header: ${name}`);
      head += `${name}: ${value}\r\n`;
    }
    return head;
  }

  send(head: string, body: string): Promise<WholeResponse> {
    return new Promise<WholeResponse>((resolve, reject) => {
      if (this.#closed) {
        reject(new PollConnectionError('BANK_CLOSED', 'bank connections closed'));
        return;
      }
      const waiting: Waiting = { head, body, since: Date.now(), resolve, reject };
      let conn = this.#idle.pop();
      // one the bank has just closed (its close event not handled yet) is left to that event; one idle
      // past its keep-alive (the sweep has not come by yet) may be closing at the bank's end
      while (conn && (!conn.socket?.writable || waiting.since - conn.lastActivity >= conn.keepAliveMs)) {
        if (conn.socket?.writable) conn.socket.destroy();
        conn = this.#idle.pop();
      }
      if (conn) this.#write(conn, waiting);
      else if (this.#all.size < this.#options.connections) this.#open(waiting);
      else this.#queue.push(waiting);
    });
  }

  close(): void {
    this.#closed = true;
    const err = new PollConnectionError('BANK_CLOSED', 'bank connections closed');
    for (let next = this.#queue.shift(); next; next = this.#queue.shift()) next.reject(err);
    for (const conn of this.#all) {
      conn.error ??= err;
      conn.socket?.destroy();
    }
    this.#stopSweeper();
  }

  /** The whole request in one write: one TLS record, one system call. */
  #write(conn: Connection, waiting: Waiting): void {
    const socket = conn.socket as Socket;
    conn.waiting = waiting;
    conn.reader = new Http1ResponseReader();
    conn.lastActivity = Date.now();
    waiting.since = conn.lastActivity;
    if (!conn.referenced) {
      socket.ref();
      conn.referenced = true;
    }
    // the head in latin1 (one byte a character, as undici writes it), the body in UTF-8
    const head = `${waiting.head}content-length: ${Buffer.byteLength(waiting.body)}\r\n\r\n`;
    const bytes = Buffer.allocUnsafe(head.length + Buffer.byteLength(waiting.body));
    bytes.write(waiting.body, bytes.write(head, 0, 'latin1'), 'utf8');
    socket.write(bytes);
  }

  /**
   * An answer complete: the connection is used again only from the next turn, and after a token (2xx)
   * only once it stayed quiet for TOKEN_QUIET_MS; any byte meanwhile drops it (#onData). A second
   * answer the bank sent behind the first would otherwise be read as the next poll's answer: a token
   * for another payment. HTTP/1.1 cannot tell a later duplicate apart (undici neither); 2xx answers
   * are at most one a payment, so only they wait (polls answered pending reuse at once).
   */
  #settle(conn: Connection, statusCode: number): void {
    conn.settling = true;
    const release = () => {
      conn.settling = false;
      if (conn.socket?.writable) this.#release(conn);
    };
    if (statusCode < 300) setTimeout(release, TOKEN_QUIET_MS);
    else setImmediate(release);
  }

  /** A connection free again: the next waiting request, else the idle list (unref'd: it holds no work). */
  #release(conn: Connection): void {
    const next = this.#queue.shift();
    if (next) {
      this.#write(conn, next);
      return;
    }
    conn.lastActivity = Date.now();
    if (conn.referenced) {
      conn.socket?.unref();
      conn.referenced = false;
    }
    this.#idle.push(conn);
  }

  #open(waiting: Waiting): void {
    const conn: Connection = {
      socket: null,
      waiting,
      reader: null,
      lastActivity: Date.now(),
      keepAliveMs: this.#options.keepAliveMs,
      error: null,
      referenced: true,
      settling: false,
    };
    this.#all.add(conn);
    this.#startSweeper();
    const { origin } = this.#options;
    // an IPv6 literal's hostname is bracketed in a URL, not for DNS (undici strips them too)
    const hostname = origin.hostname.startsWith('[') ? origin.hostname.slice(1, -1) : origin.hostname;
    this.#options.connect(
      { hostname, host: origin.host, protocol: origin.protocol, port: origin.port },
      (...answer) => {
        const [err, socket] = answer;
        if (err) {
          this.#connectFailed(conn, err);
          return;
        }
        if (this.#closed) {
          this.#connectFailed(conn, new PollConnectionError('BANK_CLOSED', 'bank connections closed'));
          socket.destroy();
          return;
        }
        conn.socket = socket;
        socket.on('data', (chunk: Buffer) => {
          this.#onData(conn, chunk);
        });
        socket.on('error', (error: Error) => {
          conn.error ??= error;
        });
        socket.on('close', () => {
          this.#onClose(conn);
        });
        conn.waiting = null;
        this.#write(conn, waiting);
      },
    );
  }

  /** Nothing was sent: this request fails, and the waiting ones too unless a connection still works. */
  #connectFailed(conn: Connection, err: Error): void {
    this.#all.delete(conn);
    conn.waiting?.reject(err);
    conn.waiting = null;
    if (this.#all.size > 0) return;
    for (let next = this.#queue.shift(); next; next = this.#queue.shift()) next.reject(err);
  }

  #onData(conn: Connection, chunk: Buffer): void {
    const { waiting, reader } = conn;
    // Bytes with no request in flight: this connection no longer tells answers apart.
    if (!waiting || !reader) {
      conn.socket?.destroy();
      return;
    }
    conn.lastActivity = Date.now();
    let complete: boolean;
    try {
      complete = reader.feed(chunk);
    } catch (err) {
      conn.error = err as Error;
      conn.socket?.destroy();
      return;
    }
    if (complete) this.#finish(conn, waiting, reader);
  }

  #finish(conn: Connection, waiting: Waiting, reader: Http1ResponseReader): void {
    conn.waiting = null;
    conn.reader = null;
    waiting.resolve({ statusCode: reader.statusCode, headers: reader.headers, text: reader.text() });
    conn.keepAliveMs = keepAliveOf(reader.headers['keep-alive'], this.#options);
    if (reader.reusable && reader.extra === 0 && conn.keepAliveMs > 0 && conn.socket?.writable) this.#settle(conn, reader.statusCode);
    else conn.socket?.destroy();
  }

  #onClose(conn: Connection): void {
    this.#all.delete(conn);
    const at = this.#idle.indexOf(conn);
    if (at >= 0) this.#idle.splice(at, 1);
    const { waiting, reader } = conn;
    conn.waiting = null;
    conn.reader = null;
    if (waiting && reader) {
      const { statusCode, headers } = reader;
      // a body framed by the close is whole only if the close was the bank's (no error, no timeout of ours)
      if (!conn.error && reader.end()) waiting.resolve({ statusCode, headers, text: reader.text() });
      // The bank answered but the body broke off: its status may already mean it acted (whole-response.ts).
      else if (reader.headed) waiting.resolve({ statusCode, headers, text: undefined });
      else waiting.reject(conn.error ?? new PollConnectionError('BANK_SOCKET_CLOSED', 'closed before an answer'));
    }
    while (!this.#closed && this.#all.size < this.#options.connections) {
      const next = this.#queue.shift();
      if (!next) break;
      this.#open(next);
    }
  }

  /**
   * Fails requests the bank stopped answering, or answers byte by byte past 2 × BANK_TIMEOUT_MS in all,
   * and polls queued for a connection longer than BANK_TIMEOUT_MS (never sent: the caller polls again);
   * closes connections idle past their keep-alive.
   */
  #sweep(): void {
    const now = Date.now();
    const { timeoutMs } = this.#options;
    for (const conn of this.#all) {
      if (!conn.socket) continue;
      if (conn.waiting && (now - conn.lastActivity >= timeoutMs || now - conn.waiting.since >= 2 * timeoutMs)) {
        conn.error = new PollConnectionError('BANK_TIMEOUT', `no answer within ${String(timeoutMs)} ms`);
        conn.socket.destroy();
      } else if (!conn.waiting && !conn.settling && now - conn.lastActivity >= conn.keepAliveMs) {
        conn.socket.destroy();
      }
    }
    for (let next = this.#queue.peek(); next && now - next.since >= timeoutMs; next = this.#queue.peek()) {
      this.#queue.shift();
      next.reject(new PollConnectionError('BANK_TIMEOUT', `no connection free within ${String(timeoutMs)} ms`));
    }
    if (this.#all.size === 0) this.#stopSweeper();
  }

  #startSweeper(): void {
    if (this.#sweeper) return;
    // A quarter of the timeout, at most half a second: a request is given up within 1¼ × BANK_TIMEOUT_MS.
    this.#sweeper = setInterval(
      () => {
        this.#sweep();
      },
      Math.max(20, Math.min(500, this.#options.timeoutMs / 4)),
    );
    this.#sweeper.unref();
  }

  #stopSweeper(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = null;
  }
}

/** How long an idle connection is kept: ours, or the bank's Keep-Alive timeout less a margin (RFC 9112 §9.3). */
function keepAliveOf(header: string | string[] | undefined, options: PollConnectionsOptions): number {
  const hint = header === undefined ? null : KEEP_ALIVE_HINT.exec(Array.isArray(header) ? header.join(',') : header);
  if (!hint) return options.keepAliveMs;
  return Math.min(Number(hint[1]) * 1000 - KEEP_ALIVE_MARGIN_MS, options.keepAliveMaxMs);
}
