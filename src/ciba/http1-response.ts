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
const MAX_HEAD_BYTES = 16 * 1024;
/** A token answer (an ID token and an access token) is a few KiB; a hostile body is cut off here. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** All bytes of one answer, framing included: 1 MiB sent as 1-byte chunks would be 6 MiB of wire. */
const MAX_WIRE_BYTES = MAX_BODY_BYTES + 256 * 1024;
/** A token answer is one or a few chunks; thousands of tiny ones cost a step each and say nothing. */
const MAX_CHUNKS = 4096;
/** Interim answers before the final one (RFC 9110 §15.2 sets no limit; a bank sends at most one or two). */
const MAX_INTERIM = 5;
/** Trailer fields after the last chunk (we read none of them). */
const MAX_TRAILER_BYTES = 64 * 1024;
const MAX_LINE_BYTES = 4096;
const HEAD_END = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?:[ \r]|$)/;
/** RFC 9110 §5.1: a field name is a token (so no whitespace before the colon, no folded line). */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** RFC 9110 §5.5, RFC 9112 §2.2: NUL, or a CR or LF not part of a CRLF, anywhere in the head is refused. */
const BARE_CR_LF_NUL = /\0|\r(?!\n)|(?<!\r)\n/;
const DIGITS = /^\d{1,15}$/;
/** A chunk size (at most 8 hex digits: 4 GiB is past any limit here), then optional extensions (§7.1.1). */
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,8})[\t ]*(?:;.*)?$/;

type Stage = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'until-close' | 'done';
/** Names as keys (lower case), without a prototype: a field named `__proto__` is just a field. */
export type Fields = Record<string, string | string[]>;

export class Http1ResponseReader {
  statusCode = 0;
  headers: Fields = Object.create(null) as Fields;
  /** A final status and its fields are in hand and framed (the bank has answered, even if the body breaks off). */
  headed = false;
  /** The connection may carry another request after this response. */
  reusable = true;
  /** Bytes after the end of this response (none expected: one request is in flight at a time). */
  extra = 0;
  #stage: Stage = 'head';
  /** An unfinished head or line, kept in one buffer that grows (no concat per read). */
  #held: Buffer | null = null;
  #heldLength = 0;
  /** Where the search for the line's end resumes in the held bytes (they were searched already). */
  #searchFrom = 0;
  #remaining = 0;
  /** The body in one buffer that grows by doubling (no Buffer view per chunk). */
  #body: Buffer | null = null;
  #bodyBytes = 0;
  #wireBytes = 0;
  #chunks = 0;
  #interim = 0;
  #trailerBytes = 0;

  /** Takes the next bytes; true once the response is complete. Throws ResponseFormatError. */
  feed(chunk: Buffer): boolean {
    this.#wireBytes += chunk.length;
    if (this.#wireBytes > MAX_WIRE_BYTES && this.#stage !== 'done') throw new ResponseFormatError('response too large');
    let data = this.#heldLength > 0 ? this.#append(chunk) : chunk;
    this.#heldLength = 0;
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
    return this.#body ? this.#body.toString('utf8', 0, this.#bodyBytes) : '';
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
        this.#addBody(data, take);
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
    const end = data.indexOf(HEAD_END, this.#searchFrom);
    if (end < 0) return this.#keep(data, MAX_HEAD_BYTES, HEAD_END.length, 'response head too long');
    this.#searchFrom = 0;
    if (end > MAX_HEAD_BYTES) throw new ResponseFormatError('response head too long');
    const head = data.toString('latin1', 0, end);
    const status = STATUS_LINE.exec(head);
    if (!status) throw new ResponseFormatError('not an HTTP/1.1 status line');
    if (BARE_CR_LF_NUL.test(head)) throw new ResponseFormatError('invalid character in the response head');
    const headers = Object.create(null) as Fields;
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
      if (++this.#interim > MAX_INTERIM) throw new ResponseFormatError('too many interim answers');
      return rest;
    }
    this.statusCode = statusCode;
    this.headers = headers;
    const http10 = status[1] === '0';
    const connection = joined(headers.connection).toLowerCase();
    if (http10 ? !/\bkeep-alive\b/.test(connection) : /\bclose\b/.test(connection)) this.reusable = false;
    this.#frameBody(headers, http10);
    // Only a framed answer counts as one: with faulty framing it is discarded (RFC 9112 §6.3, 5).
    this.headed = true;
    // framed, only too large: the bank did answer (whole-response.ts)
    if (this.#stage === 'length' && this.#remaining > MAX_BODY_BYTES) {
      throw new ResponseFormatError('response body too large');
    }
    return rest;
  }

  /** RFC 9112 §6.3: how the body's end is known. */
  #frameBody(headers: Fields, http10: boolean): void {
    const coding = headers['transfer-encoding'];
    const length = headers['content-length'];
    if (this.statusCode === 204 || this.statusCode === 304) {
      this.#stage = 'done';
    } else if (coding !== undefined) {
      // §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
      if (http10) throw new ResponseFormatError('transfer-encoding in an HTTP/1.0 answer');
      // Both framings at once is how requests are smuggled (§6.3, 3): never trust this connection again.
      if (length !== undefined) this.reusable = false;
      const codings = joined(coding)
        .split(',')
        .map((c) => c.trim().toLowerCase());
      // §7: chunked is applied at most once, and last.
      if (codings.indexOf('chunked') < codings.length - 1) throw new ResponseFormatError('chunked not last or twice');
      const last = codings[codings.length - 1];
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
      this.#stage = this.#remaining === 0 ? 'done' : 'length';
    } else {
      this.#stage = 'until-close';
      this.reusable = false;
    }
  }

  /** A chunk-size line, the CRLF after a chunk's data, or a trailer line (§7.1). */
  #readLine(data: Buffer): Buffer {
    const end = data.indexOf(CRLF, this.#searchFrom);
    if (end < 0) return this.#keep(data, MAX_LINE_BYTES, CRLF.length, 'chunk line too long');
    this.#searchFrom = 0;
    const line = data.toString('latin1', 0, end);
    const rest = data.subarray(end + CRLF.length);
    if (this.#stage === 'chunk-end') {
      if (line !== '') throw new ResponseFormatError('chunk not followed by CRLF');
      this.#stage = 'chunk-size';
    } else if (this.#stage === 'trailers') {
      this.#trailerBytes += end + CRLF.length;
      if (this.#trailerBytes > MAX_TRAILER_BYTES) throw new ResponseFormatError('trailers too long');
      if (line === '') this.#stage = 'done';
    } else {
      const size = CHUNK_SIZE.exec(line);
      if (!size) throw new ResponseFormatError('invalid chunk size');
      if (++this.#chunks > MAX_CHUNKS) throw new ResponseFormatError('too many chunks');
      this.#remaining = parseInt(size[1] ?? '', 16);
      if (this.#bodyBytes + this.#remaining > MAX_BODY_BYTES) throw new ResponseFormatError('response body too large');
      this.#stage = this.#remaining === 0 ? 'trailers' : 'chunk-data';
    }
    return rest;
  }

  /** Holds `data` (no end found in it) for the next read; the search then resumes near its end. */
  #keep(data: Buffer, max: number, endLength: number, tooLong: string): Buffer {
    if (data.length > max) throw new ResponseFormatError(tooLong);
    if (!this.#held || this.#held.length < data.length) this.#held = Buffer.allocUnsafe(Math.max(1024, data.length * 2));
    // data may already be the held bytes (copy handles the overlap)
    data.copy(this.#held, 0);
    this.#heldLength = data.length;
    this.#searchFrom = Math.max(0, data.length - endLength + 1);
    return Buffer.alloc(0);
  }

  /** The held bytes and `chunk` as one buffer (the held one, grown when needed). */
  #append(chunk: Buffer): Buffer {
    const held = this.#held as Buffer;
    const total = this.#heldLength + chunk.length;
    let into = held;
    if (held.length < total) {
      into = Buffer.allocUnsafe(Math.max(total, held.length * 2));
      held.copy(into, 0, 0, this.#heldLength);
      this.#held = into;
    }
    chunk.copy(into, this.#heldLength);
    return into.subarray(0, total);
  }

  #addBody(data: Buffer, take: number): void {
    const size = this.#bodyBytes + take;
    if (size > MAX_BODY_BYTES) throw new ResponseFormatError('response body too large');
    if (!this.#body || this.#body.length < size) {
      const grown = Buffer.allocUnsafe(Math.min(MAX_BODY_BYTES, Math.max(size, 2 * (this.#body?.length ?? 2048))));
      this.#body?.copy(grown, 0, 0, this.#bodyBytes);
      this.#body = grown;
    }
    data.copy(this.#body, this.#bodyBytes, 0, take);
    this.#bodyBytes = size;
  }
}

/** The field line head[start, end) into the map (names lower-cased; repeated fields become a list, as undici's). */
function addField(headers: Fields, head: string, start: number, end: number): void {
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
