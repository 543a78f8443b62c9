/**
 * Reads one HTTP/1.1 response from the bytes of a connection (RFC 9112): interim 1xx answers
 * skipped, the body framed by Transfer-Encoding: chunked, Content-Length, or the connection's end.
 * Small and strict, for the token poll's small answers (poll-connections.ts); anything it cannot
 * frame with certainty is an error, and the connection it came on is not used again.
 * @see https://www.rfc-editor.org/rfc/rfc9112#section-6.3
 */

/** The answer could not be read as HTTP/1.1 (or was larger than any token answer may be). */
export class ResponseFormatError extends Error {
  readonly code = 'BANK_BAD_RESPONSE';
  constructor(message: string) {
    super(message);
    this.name = 'ResponseFormatError';
  }
}

/** The head (status line and fields) is at most this long; a token answer's is a few hundred bytes. */
const MAX_HEAD_BYTES = 64 * 1024;
/** A token answer (an ID token and an access token) is a few KiB; a hostile body is cut off here. */
export const MAX_BODY_BYTES = 1024 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?:[ \r]|$)/;
/** RFC 9110 §5.1: a field name is a token (so no whitespace before the colon, no folded line). */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const DIGITS = /^\d{1,15}$/;
/** A chunk size (at most 8 hex digits: 4 GiB is past any limit here), then optional extensions (§7.1.1). */
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,8})[\t ]*(?:;.*)?$/;

type Stage = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'until-close' | 'done';

export class Http1ResponseReader {
  statusCode = 0;
  headers: Record<string, string | string[]> = {};
  /** A final status and its fields are in hand (the bank has answered, even if the body breaks off). */
  headed = false;
  /** The connection may carry another request after this response. */
  reusable = true;
  /** Bytes after the end of this response (none expected: one request is in flight at a time). */
  extra = 0;
  #stage: Stage = 'head';
  #pending: Buffer | null = null;
  #remaining = 0;
  #body: Buffer[] = [];
  #bodyBytes = 0;

  /** Takes the next bytes; true once the response is complete. Throws ResponseFormatError. */
  feed(chunk: Buffer): boolean {
    let data = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = null;
    while (data.length > 0 && this.#stage !== 'done') data = this.#step(data);
    if (this.#stage === 'done') this.extra += data.length;
    return this.#stage === 'done';
  }

  /** The connection ended: true when that completes the response (a body framed by the close). */
  end(): boolean {
    if (this.#stage === 'until-close') this.#stage = 'done';
    return this.#stage === 'done';
  }

  /** The body as UTF-8 text (once complete). */
  text(): string {
    const body = this.#body;
    return body.length === 1 ? (body[0] as Buffer).toString('utf8') : Buffer.concat(body).toString('utf8');
  }

  /** Consumes what it can of `data` at the current stage; returns the rest (or keeps it for more). */
  #step(data: Buffer): Buffer {
    switch (this.#stage) {
      case 'head':
        return this.#readHead(data);
      case 'length':
      case 'chunk-data':
      case 'until-close': {
        const take = this.#stage === 'until-close' ? data.length : Math.min(this.#remaining, data.length);
        this.#addBody(take === data.length ? data : data.subarray(0, take));
        this.#remaining -= take;
        if (this.#stage === 'length' && this.#remaining === 0) this.#stage = 'done';
        if (this.#stage === 'chunk-data' && this.#remaining === 0) this.#stage = 'chunk-end';
        return data.subarray(take);
      }
      case 'chunk-size':
      case 'chunk-end':
      case 'trailers':
        return this.#readLine(data);
      case 'done':
        return data;
    }
  }

  #readHead(data: Buffer): Buffer {
    const end = data.indexOf(HEAD_END);
    if (end < 0) return this.#keep(data, MAX_HEAD_BYTES, 'response head too long');
    if (end > MAX_HEAD_BYTES) throw new ResponseFormatError('response head too long');
    const head = data.toString('latin1', 0, end);
    const status = STATUS_LINE.exec(head);
    if (!status) throw new ResponseFormatError('not an HTTP/1.1 status line');
    const headers: Record<string, string | string[]> = {};
    // One field a line, read in place (no array of lines per answer).
    for (let at = head.indexOf('\r\n'); at >= 0;) {
      const next = head.indexOf('\r\n', at + 2);
      addField(headers, head, at + 2, next < 0 ? head.length : next);
      at = next;
    }
    const statusCode = Number(status[2]);
    const rest = data.subarray(end + HEAD_END.length);
    // 1xx: an interim answer (RFC 9110 §15.2); the final one follows on the same connection.
    if (statusCode < 200) {
      if (statusCode === 101) throw new ResponseFormatError('unexpected protocol switch');
      return rest;
    }
    this.statusCode = statusCode;
    this.headers = headers;
    this.headed = true;
    const connection = joined(headers.connection).toLowerCase();
    if (status[1] === '0' ? !/\bkeep-alive\b/.test(connection) : /\bclose\b/.test(connection)) this.reusable = false;
    this.#frameBody(headers);
    return rest;
  }

  /** RFC 9112 §6.3: how the body's end is known. */
  #frameBody(headers: Record<string, string | string[]>): void {
    const coding = headers['transfer-encoding'];
    const length = headers['content-length'];
    if (this.statusCode === 204 || this.statusCode === 304) {
      this.#stage = 'done';
    } else if (coding !== undefined) {
      // Both framings at once is how requests are smuggled (§6.3, 3): never trust this connection again.
      if (length !== undefined) this.reusable = false;
      const last = joined(coding).split(',').pop()?.trim().toLowerCase();
      this.#stage = last === 'chunked' ? 'chunk-size' : 'until-close';
      if (last !== 'chunked') this.reusable = false;
    } else if (length !== undefined) {
      const values = new Set(
        joined(length)
          .split(',')
          .map((v) => v.trim()),
      );
      const value = values.size === 1 ? [...values][0] : undefined;
      if (value === undefined || !DIGITS.test(value)) throw new ResponseFormatError('invalid content-length');
      this.#remaining = Number(value);
      if (this.#remaining > MAX_BODY_BYTES) throw new ResponseFormatError('response body too large');
      this.#stage = this.#remaining === 0 ? 'done' : 'length';
    } else {
      this.#stage = 'until-close';
      this.reusable = false;
    }
  }

  /** A chunk-size line, the CRLF after a chunk's data, or a trailer line (§7.1). */
  #readLine(data: Buffer): Buffer {
    const end = data.indexOf(CRLF);
    if (end < 0) return this.#keep(data, 4096, 'chunk line too long');
    const line = data.toString('latin1', 0, end);
    const rest = data.subarray(end + CRLF.length);
    if (this.#stage === 'chunk-end') {
      if (line !== '') throw new ResponseFormatError('chunk not followed by CRLF');
      this.#stage = 'chunk-size';
    } else if (this.#stage === 'trailers') {
      if (line === '') this.#stage = 'done';
    } else {
      const size = CHUNK_SIZE.exec(line);
      if (!size) throw new ResponseFormatError('invalid chunk size');
      this.#remaining = parseInt(size[1] ?? '', 16);
      if (this.#bodyBytes + this.#remaining > MAX_BODY_BYTES) throw new ResponseFormatError('response body too large');
      this.#stage = this.#remaining === 0 ? 'trailers' : 'chunk-data';
    }
    return rest;
  }

  #keep(data: Buffer, max: number, tooLong: string): Buffer {
    if (data.length > max) throw new ResponseFormatError(tooLong);
    this.#pending = data;
    return Buffer.alloc(0);
  }

  #addBody(part: Buffer): void {
    this.#bodyBytes += part.length;
    if (this.#bodyBytes > MAX_BODY_BYTES) throw new ResponseFormatError('response body too large');
    this.#body.push(part);
  }
}

/** The field line head[start, end) into the map (names lower-cased; repeated fields become a list, as undici's). */
function addField(headers: Record<string, string | string[]>, head: string, start: number, end: number): void {
  const colon = head.indexOf(':', start);
  const name = colon > start && colon < end ? head.slice(start, colon) : '';
  // RFC 9112 §5.1: no whitespace before the colon; §5.2: obsolete line folding is rejected.
  if (!FIELD_NAME.test(name)) throw new ResponseFormatError('invalid header field');
  const key = name.toLowerCase();
  const value = head.slice(colon + 1, end).trim();
  const seen = headers[key];
  if (seen === undefined) headers[key] = value;
  else if (Array.isArray(seen)) seen.push(value);
  else headers[key] = [seen, value];
}

function joined(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(', ') : (value ?? '');
}
