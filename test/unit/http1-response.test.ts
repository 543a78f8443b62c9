import { Http1ResponseReader, MAX_BODY_BYTES, ResponseFormatError } from '../../src/ciba/http1-response.js';

/** Feeds `text` in pieces of `size` bytes; returns whether the last piece completed the response. */
function feedAll(reader: Http1ResponseReader, bytes: Buffer | string, size = Infinity): boolean {
  const data = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  let complete = false;
  for (let at = 0; at < data.length; at += size) complete = reader.feed(data.subarray(at, at + size));
  return complete;
}

const PENDING = '{"error":"authorization_pending"}';
const pending = (extra = '') =>
  `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${PENDING.length}\r\n${extra}\r\n${PENDING}`;

describe('reading one HTTP/1.1 answer', () => {
  test.each([1, 7, Infinity])('when it comes in pieces of %s bytes, then status, fields and body are whole', (size) => {
    const reader = new Http1ResponseReader();
    expect(feedAll(reader, pending('Cache-Control: no-store\r\nX-Many: a\r\nx-many: b\r\n'), size)).toBe(true);
    expect(reader.statusCode).toBe(400);
    expect(reader.headers).toMatchObject({ 'cache-control': 'no-store', 'x-many': ['a', 'b'] });
    expect(reader.text()).toBe(PENDING);
    expect(reader.reusable).toBe(true);
    expect(reader.extra).toBe(0);
  });

  test('when the body is chunked with extensions and trailers, then it is joined and the connection kept', () => {
    const reader = new Http1ResponseReader();
    const chunked =
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n{"a":\r\n3\r\n"b"\r\n1\r\n}\r\n0\r\nx-trailer: 1\r\n\r\n';
    expect(feedAll(reader, chunked, 3)).toBe(true);
    expect(reader.text()).toBe('{"a":"b"}');
    expect(reader.reusable).toBe(true);
  });

  test('when a multi-byte character is split between two reads, then the text is still right', () => {
    const body = Buffer.from('{"error_description":"Zahlung abgelehnt – Überweisung"}', 'utf8');
    const head = Buffer.from(`HTTP/1.1 400 Bad Request\r\ncontent-length: ${body.length}\r\n\r\n`, 'latin1');
    const reader = new Http1ResponseReader();
    expect(feedAll(reader, Buffer.concat([head, body]), 5)).toBe(true);
    expect(reader.text()).toBe(body.toString('utf8'));
  });

  test('when interim 1xx answers come first, then the final answer is the one read', () => {
    const reader = new Http1ResponseReader();
    expect(
      feedAll(reader, `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n${pending()}`),
    ).toBe(true);
    expect(reader.statusCode).toBe(400);
    expect(reader.headers.link).toBeUndefined();
  });

  test.each([
    ['Connection: close', 'HTTP/1.1 400 x\r\nConnection: close\r\ncontent-length: 2\r\n\r\n{}'],
    ['HTTP/1.0 without keep-alive', 'HTTP/1.0 400 x\r\ncontent-length: 2\r\n\r\n{}'],
    [
      'both framings (a smuggling pattern)',
      'HTTP/1.1 400 x\r\ntransfer-encoding: chunked\r\ncontent-length: 9\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
    ],
  ])('when %s, then the connection is not used again', (_name, answer) => {
    const reader = new Http1ResponseReader();
    expect(feedAll(reader, answer)).toBe(true);
    expect(reader.text()).toBe('{}');
    expect(reader.reusable).toBe(false);
  });

  test('when neither length nor chunking is given, then the body ends with the connection', () => {
    const reader = new Http1ResponseReader();
    expect(feedAll(reader, 'HTTP/1.1 503 x\r\ncontent-type: text/plain\r\n\r\nbusy')).toBe(false);
    expect(reader.headed).toBe(true);
    expect(reader.end()).toBe(true);
    expect(reader.text()).toBe('busy');
    expect(reader.reusable).toBe(false);
  });

  test('when the connection ends inside a body of known length, then the answer is incomplete (headed)', () => {
    const reader = new Http1ResponseReader();
    expect(feedAll(reader, 'HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{"acc')).toBe(false);
    expect(reader.end()).toBe(false);
    expect(reader.headed).toBe(true);
    expect(reader.statusCode).toBe(200);
  });

  test('when bytes follow the answer, then they are counted (no request asked for them)', () => {
    const reader = new Http1ResponseReader();
    expect(feedAll(reader, `${pending()}HTTP/1.1 200 OK\r\n`)).toBe(true);
    expect(reader.extra).toBe(17);
  });

  test.each([
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n'],
    ['HTTP/2 status line', 'HTTP/2 200\r\n\r\n'],
    ['two different lengths', 'HTTP/1.1 400 x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}'],
    ['a negative length', 'HTTP/1.1 400 x\r\ncontent-length: -1\r\n\r\n'],
    ['a folded header line', 'HTTP/1.1 400 x\r\nx-a: 1\r\n  2\r\ncontent-length: 0\r\n\r\n'],
    ['a space before the colon', 'HTTP/1.1 400 x\r\ncontent-length : 0\r\n\r\n'],
    ['a bad chunk size', 'HTTP/1.1 400 x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n'],
    ['a chunk without its CRLF', 'HTTP/1.1 400 x\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}xx\r\n'],
    ['a protocol switch', 'HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n'],
    ['HTTP/1.0 with chunked (faulty framing)', 'HTTP/1.0 400 x\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n'],
    ['chunked twice', 'HTTP/1.1 400 x\r\ntransfer-encoding: chunked, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n'],
    ['a bare CR in a value', 'HTTP/1.1 400 x\r\nx-a: 1\rx-b: 2\r\ncontent-length: 0\r\n\r\n'],
    ['a bare LF in a value', 'HTTP/1.1 400 x\r\nx-a: 1\nx-b: 2\r\ncontent-length: 0\r\n\r\n'],
    ['a NUL in a value', 'HTTP/1.1 400 x\r\nx-a: 1\0\r\ncontent-length: 0\r\n\r\n'],
  ])('when the answer has %s, then it is refused', (_name, answer) => {
    expect(() => feedAll(new Http1ResponseReader(), answer)).toThrow(ResponseFormatError);
  });

  test('when the head never ends, then it is refused past 16 KiB instead of buffered forever', () => {
    const reader = new Http1ResponseReader();
    reader.feed(Buffer.from('HTTP/1.1 400 x\r\n'));
    expect(() => {
      for (let i = 0; i < 20; i++) reader.feed(Buffer.from(`x-pad-${i}: ${'a'.repeat(1000)}\r\n`));
    }).toThrow(ResponseFormatError);
  });

  test('when a head of 15 KiB comes a byte at a time, then it is read whole (held bytes searched once)', () => {
    const fields = Array.from({ length: 150 }, (_, i) => `x-pad-${i}: ${'a'.repeat(90)}\r\n`).join('');
    const reader = new Http1ResponseReader();
    expect(feedAll(reader, pending(fields), 1)).toBe(true);
    expect(reader.headers['x-pad-149']).toBe('a'.repeat(90));
    expect(reader.text()).toBe(PENDING);
  });

  test('when a 200 has conflicting lengths, then it is not an answer (headed stays false: discarded, RFC 9112 §6.3)', () => {
    const reader = new Http1ResponseReader();
    expect(() => feedAll(reader, 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}')).toThrow(
      ResponseFormatError,
    );
    expect(reader.headed).toBe(false);
  });

  test('when a field is named __proto__, then it is a field like any other (the map has no prototype)', () => {
    const reader = new Http1ResponseReader();
    expect(feedAll(reader, pending('__proto__: x\r\n'))).toBe(true);
    expect(reader.headers.__proto__).toBe('x');
    expect(Object.getPrototypeOf(reader.headers)).toBeNull();
  });

  test('when a bank sends more interim answers than any does, then the answer is refused', () => {
    expect(() => feedAll(new Http1ResponseReader(), 'HTTP/1.1 100 Continue\r\n\r\n'.repeat(6) + pending())).toThrow(
      ResponseFormatError,
    );
  });

  test('when the trailers never end, then they are refused past 64 KiB', () => {
    const reader = new Http1ResponseReader();
    reader.feed(Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n'));
    expect(() => {
      for (let i = 0; i < 100; i++) reader.feed(Buffer.from(`x-t-${i}: ${'a'.repeat(1000)}\r\n`));
    }).toThrow(ResponseFormatError);
  });

  test('when a body comes in thousands of 1-byte chunks, then it is refused (a step and a view each)', () => {
    const reader = new Http1ResponseReader();
    reader.feed(Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n'));
    expect(() => reader.feed(Buffer.from('1\r\na\r\n'.repeat(5000)))).toThrow(ResponseFormatError);
  });

  test('when chunk extensions make the answer far larger than its body, then it is refused by its wire size', () => {
    const reader = new Http1ResponseReader();
    reader.feed(Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n'));
    const chunk = Buffer.from(`1;x=${'e'.repeat(4000)}\r\na\r\n`);
    expect(() => {
      for (let i = 0; i < 400; i++) reader.feed(chunk);
    }).toThrow(ResponseFormatError);
  });

  test.each([
    ['declared', `HTTP/1.1 200 OK\r\ncontent-length: ${MAX_BODY_BYTES + 1}\r\n\r\n`],
    ['chunked', `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${(MAX_BODY_BYTES + 1).toString(16)}\r\n`],
  ])('when a body over 1 MiB is %s, then it is refused after the head (the bank did answer)', (_name, head) => {
    const reader = new Http1ResponseReader();
    expect(() => feedAll(reader, head)).toThrow(ResponseFormatError);
    expect(reader.headed).toBe(true);
  });

  test('when a body without a length grows past 1 MiB, then it is refused', () => {
    const reader = new Http1ResponseReader();
    reader.feed(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'));
    const block = Buffer.alloc(64 * 1024, 0x61);
    expect(() => {
      for (let i = 0; i < 17; i++) reader.feed(block);
    }).toThrow(ResponseFormatError);
  });
});
