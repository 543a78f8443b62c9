import type { Dispatcher } from 'undici';
import { z } from 'zod';
import type { Clock } from '../../clock.js';
import { describeNetworkError } from '../../ciba/backchannel.js';
import type { ClientAuthentication } from '../../ciba/client-auth.js';
import { discardBody, isJsonContentType, readJsonObject, readOAuthError } from '../../ciba/http-response.js';
import { traceHeaders } from '../../tracing.js';

/** Refresh this long before the bank's expiry, so a token never expires between our check and its use. */
const EXPIRY_MARGIN_MS = 30_000;
/** When the bank sends no expires_in (RFC 6749 §5.1 makes it optional): keep the token this long. */
const DEFAULT_LIFETIME_MS = 5 * 60_000;

export class ClientCredentialsError extends Error {
  override readonly name = 'ClientCredentialsError';
  constructor(
    /** `refused`: the bank said no to our credentials (configuration); `unavailable`: try again later. */
    readonly kind: 'refused' | 'unavailable',
    message: string,
  ) {
    super(message);
  }
}

const tokenSchema = z.object({
  access_token: z.string().min(1),
  token_type: z.string().regex(/^bearer$/i),
  expires_in: z.number().positive().optional(),
});

export interface ClientCredentialsDeps {
  agent: Dispatcher;
  clock: Clock;
  scope: string;
  tokenEndpoint: () => Promise<URL>;
  clientAuth: () => Promise<ClientAuthentication>;
}

/**
 * The client-credentials token (RFC 6749 §4.4) Open Banking UK asks for on the consent and
 * payment-status calls (scope `payments`), over mTLS so it is bound to our transport certificate
 * (RFC 8705 §3). One token is shared and kept until shortly before it expires; concurrent callers
 * share one request. `invalidate()` drops it after the resource server refused it (401).
 */
export function createClientCredentials(deps: ClientCredentialsDeps): {
  get(): Promise<string>;
  invalidate(token: string): void;
} {
  let cached: { token: string; until: number } | undefined;
  let inFlight: Promise<string> | undefined;

  async function fetchToken(): Promise<string> {
    const endpoint = await deps.tokenEndpoint().catch(() => {
      throw new ClientCredentialsError('unavailable', 'bank metadata unavailable');
    });
    const auth = await deps.clientAuth();
    const fresh = auth.freshBody ? await auth.freshBody() : '';
    const body = `grant_type=client_credentials&scope=${encodeURIComponent(deps.scope)}${auth.staticBody}${fresh}`;
    let response: Dispatcher.ResponseData;
    try {
      response = await deps.agent.request({
        origin: endpoint.origin,
        path: endpoint.pathname + endpoint.search,
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          ...traceHeaders(),
          ...auth.headers,
        },
        body,
      });
    } catch (cause) {
      throw new ClientCredentialsError('unavailable', `token request failed: ${describeNetworkError(cause)}`);
    }
    if (response.statusCode === 429 || response.statusCode >= 500) {
      await discardBody(response);
      throw new ClientCredentialsError('unavailable', `token endpoint answered ${response.statusCode}`);
    }
    const json = await readJsonObject(response).catch(() => undefined);
    const parsed = tokenSchema.safeParse(json);
    if (response.statusCode !== 200 || !isJsonContentType(response.headers) || !parsed.success) {
      const error = readOAuthError(json)?.error ?? `http_${response.statusCode}`;
      throw new ClientCredentialsError('refused', `client credentials refused: ${error.slice(0, 64)}`);
    }
    const lifetime = (parsed.data.expires_in ?? DEFAULT_LIFETIME_MS / 1000) * 1000;
    cached = { token: parsed.data.access_token, until: deps.clock.now() + lifetime - EXPIRY_MARGIN_MS };
    return parsed.data.access_token;
  }

  return {
    get() {
      if (cached && deps.clock.now() < cached.until) return Promise.resolve(cached.token);
      inFlight ??= fetchToken().finally(() => (inFlight = undefined));
      return inFlight;
    },
    invalidate(token) {
      if (cached?.token === token) cached = undefined;
    },
  };
}
