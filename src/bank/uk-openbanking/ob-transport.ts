import { randomUUID } from 'node:crypto';
import type { Dispatcher } from 'undici';
import type { Clock } from '../../clock.js';
import type { OpenBankingConfig } from '../../config.js';
import { inSpan, SpanKind, traceHeaders } from '../../tracing.js';
import type { SigningKey } from '../../ciba/client-auth.js';
import { signDetachedJws, type JwsSigner } from './jws-signature.js';

/** One call of the Open Banking API with the FAPI headers; POSTs carry an idempotency key and, when asked, a JWS. */
export type ObSend = (
  method: 'GET' | 'POST',
  path: string,
  token: string,
  post?: { body: string; idempotencyKey: string },
) => Promise<Dispatcher.ResponseData>;

export interface ObTransportDeps {
  /** The shared mTLS Agent (transport certificate); its owner closes it. */
  agent: Dispatcher;
  clock: Clock;
  /** BANK_API_URL without a trailing slash: the API's origin and base path. */
  base: URL;
  openBanking: OpenBankingConfig;
  signingKey: () => Promise<SigningKey | undefined>;
}

export function createObTransport(deps: ObTransportDeps): ObSend {
  const { agent, base, openBanking } = deps;

  async function jwsSigner(): Promise<JwsSigner | undefined> {
    if (!openBanking.jwsSignature) return undefined;
    const key = await deps.signingKey();
    if (!key || !openBanking.jwsIssuer) throw new TypeError('x-jws-signature needs BANK_SIGNING_KEY and OB_JWS_ISS');
    return { ...key, issuer: openBanking.jwsIssuer, trustAnchor: openBanking.trustAnchor };
  }

  async function requestHeaders(token: string, post?: { body: string; idempotencyKey: string }) {
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      accept: 'application/json',
      'x-fapi-interaction-id': randomUUID(),
    };
    if (openBanking.financialId !== undefined) headers['x-fapi-financial-id'] = openBanking.financialId;
    if (post) {
      headers['content-type'] = 'application/json';
      headers['x-idempotency-key'] = post.idempotencyKey;
      const signer = await jwsSigner();
      if (signer) headers['x-jws-signature'] = await signDetachedJws(signer, post.body, deps.clock.now());
    }
    return headers;
  }

  return async (method, path, token, post) => {
    const headers = await requestHeaders(token, post);
    // Span names keep the resource, not the ids (`/domestic-payments/{id}` → `/domestic-payments`).
    const name = `bank ${method} ${path.split('/').slice(0, 2).join('/')}`;
    const attributes = { 'http.request.method': method, 'server.address': base.hostname };
    return inSpan(name, { kind: SpanKind.CLIENT, attributes }, async (span) => {
      const response = await agent.request({
        origin: base.origin,
        path: `${base.pathname}${path}`,
        method,
        headers: { ...headers, ...traceHeaders() },
        body: post?.body ?? null,
      });
      span.setAttribute('http.response.status_code', response.statusCode);
      return response;
    });
  };
}
