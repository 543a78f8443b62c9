import type { Dispatcher } from 'undici';

/** A small HTTP answer read whole (the token endpoint's JSON). */
export interface WholeResponse {
  statusCode: number;
  headers: Dispatcher.ResponseData['headers'];
  /** The body as UTF-8 text; undefined when it broke off before its end. */
  text: string | undefined;
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
    agent.dispatch(options, {
      // undici tells the handler kinds apart by this method (without it, the deprecated one is assumed)
      onRequestStart() {
        // nothing to set up
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
