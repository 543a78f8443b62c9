import type { IncomingMessage, ServerResponse } from 'node:http';

/** HTTP plumbing of the sandbox payment API: JSON answers, a size-capped JSON body, errors as `{error}`. */

const MAX_BODY = 16 * 1024;

/** An answer other than success, thrown by a handler and sent by the API's one error handler. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body.error === 'string' ? body.error : `HTTP ${status}`);
  }
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpProblem(413, { error: 'request_too_large' });
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpProblem(400, { error: 'invalid_request', error_description: 'body is not JSON' });
  }
}

/** RFC 6750 §3.1: 401 invalid_token, with the reason in WWW-Authenticate too. */
export function invalidToken(description: string): HttpProblem {
  return new HttpProblem(
    401,
    { error: 'invalid_token', error_description: description },
    { 'www-authenticate': `Bearer error="invalid_token", error_description="${description}"` },
  );
}
