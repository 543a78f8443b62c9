import type { Dispatcher } from 'undici';

/** A small HTTP answer read whole (the token endpoint's JSON). */
export interface WholeResponse {
  statusCode: number;
  headers: Dispatcher.ResponseData['headers'];
  /** The body as UTF-8 text; undefined when it broke off before its end. */
  text: string | undefined;
}

/** undici was about to send a request a second time; it was not sent again (nothing was decided). */
export class ResendRefusedError extends Error {
  readonly code = 'RESEND_REFUSED';
  constructor() {
    super('connection lost; not re-sent');
    this.name = 'ResendRefusedError';
  }
}

/**
 * Sends one request and reads its small answer whole through undici's handler interface: no body
 * stream, no async resource and no promise chain per answer, for the token poll that runs thousands
 * of times a second (issue 12.4). Rejects only when no answer came (nothing was decided); an answer
 * whose body broke off resolves with `text` undefined, since its status may already mean the bank
 * acted on the request (a 200 has consumed the auth_req_id).
 */
export function requestWhole(agent: Dispatcher, options: Dispatcher.DispatchOptions): Promise<WholeResponse> {
  return new Promise((resolve, reject) => {
    let answer: WholeResponse | null = null;
    let chunks: Buffer[] = [];
    let sent = false;
    agent.dispatch(options, {
      // undici tells the handler kinds apart by this method (without it, the deprecated one is assumed)
      onRequestStart() {
        // undici calls this each time it writes the request. A second time means it is re-sending an
        // idempotent (pipelined) request queued behind one whose connection broke (client-h1.js,
        // onHttpSocketClose): the bank may have read it already, so the re-send would be an early poll,
        // or invalid_grant for a token it issued. Throwing fails the request before anything is
        // written, without touching the new connection; our caller polls again at its interval.
        if (sent) throw new ResendRefusedError();
        sent = true;
      },
      onResponseStart(_controller, statusCode, headers) {
        if (statusCode < 200) return; // 1xx: the answer is still to come
        answer = { statusCode, headers, text: undefined };
      },
      onResponseData(_controller, chunk) {
        chunks.push(chunk);
      },
      onResponseEnd() {
        if (!answer) return;
        answer.text =
          chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8');
        chunks = [];
        resolve(answer);
      },
      onResponseError(_controller, error) {
        if (answer) resolve(answer);
        else reject(error);
      },
    });
  });
}
