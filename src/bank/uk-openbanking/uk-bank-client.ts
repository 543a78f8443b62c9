import { randomUUID } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { systemClock, type Clock } from '../../clock.js';
import type { Config, OpenBankingConfig } from '../../config.js';
import { inSpan, SpanKind, traceHeaders } from '../../tracing.js';
import { formatMinorUnits } from '../../payments/amounts.js';
import { describeNetworkError } from '../../ciba/backchannel.js';
import { createClientAuthentication, loadSigningKey, type SigningKey } from '../../ciba/client-auth.js';
import { createDiscovery } from '../../ciba/discovery.js';
import { INTENT_ID_CLAIM } from '../../ciba/id-token.js';
import { memoize } from '../../ciba/index.js';
import { BackchannelError } from '../../ciba/types.js';
import type { BankProfile } from '../../payments/bank-profile.js';
import type { BankClient, BankPaymentOutcome } from '../types.js';
import { ClientCredentialsError, createClientCredentials } from './client-credentials.js';
import { signDetachedJws, type JwsSigner } from './jws-signature.js';
import {
  buildInitiation,
  buildRisk,
  processConsentResponse,
  processPaymentResponse,
  readConsentStatus,
} from './ob-requests.js';

export interface UkOpenBankingDeps {
  config: Pick<Config, 'bank' | 'ciba' | 'merchantName'> & { openBanking: OpenBankingConfig };
  /** The shared mTLS Agent (transport certificate); its owner closes it. */
  agent: Dispatcher;
  clock?: Clock;
}

/**
 * Open Banking UK Read/Write API v3.1.10, domestic payments with decoupled (CIBA) authorisation:
 * 1. client-credentials token (scope `payments`, mTLS), 2. POST /domestic-payment-consents at
 * checkout (`profile.prepareAuthorization`), 3. the consent id as essential `openbanking_intent_id`
 * claim of the signed CIBA request, 4. POST /domestic-payments with the CIBA access token, the
 * ConsentId and the identical Initiation (`client.createPayment`), 5. GET /domestic-payments/{id}
 * until a final status (`client.paymentStatus`).
 * @see https://openbankinguk.github.io/read-write-api-site3/v3.1.10/resources-and-data-models/pisp/domestic-payment-consents.html
 */
/** A reference to one payment as the UK profile knows it: its consent and, once answered, the ASPSP's id. */
export interface DomesticPaymentReference {
  endToEndId: string;
  consentId: string | null;
  bankPaymentId: string | null;
}

/** What the profile's GET endpoints say was booked: `accepted` only for the settled Accepted* statuses. */
export type DomesticPaymentLookup =
  | { kind: 'found'; payments: { bankPaymentId: string; status: 'accepted' | 'rejected'; endToEndId: string }[] }
  | { kind: 'unavailable'; reason: string; retryAfterMs?: number };

export interface UkOpenBankingClient extends BankClient {
  paymentStatus: NonNullable<BankClient['paymentStatus']>;
  /**
   * Reconciliation (DESIGN.md) through the profile's own resources, since v3.1.10 has no search by
   * end-to-end id: GET /domestic-payments/{id} when the ASPSP's id is known; otherwise GET the
   * consent — not Consumed means no payment was made with it (nothing booked); Consumed means one
   * was, whose id we never learnt, so the outcome stays unknown (`unavailable`, asked again).
   * A Pending payment is `unavailable` too: it may still move money, so it must not read as "not booked".
   */
  lookupPayment(reference: DomesticPaymentReference): Promise<DomesticPaymentLookup>;
}

export function createUkOpenBankingBank(deps: UkOpenBankingDeps): {
  client: UkOpenBankingClient;
  profile: BankProfile;
} {
  const { config, agent } = deps;
  const ob = config.openBanking;
  const clock = deps.clock ?? systemClock;
  const base = new URL(config.bank.apiUrl.replace(/\/$/, ''));
  const discovery = createDiscovery({ config, agent });
  const signingKey = memoize(async (): Promise<SigningKey | undefined> => {
    const file = config.bank.signingKeyFile;
    return file ? loadSigningKey(file, config.bank.signingAlg, config.bank.signingKid) : undefined;
  });
  const credentials = createClientCredentials({
    agent,
    clock,
    scope: 'payments',
    tokenEndpoint: async () => (await discovery.getMetadata()).tokenEndpoint,
    clientAuth: async () => createClientAuthentication({ bank: config.bank, signingKey: await signingKey(), clock }),
  });
  const settings = { ...ob, creditor: { ...ob.creditor, name: config.merchantName } };

  async function jwsSigner(): Promise<JwsSigner | undefined> {
    if (!ob.jwsSignature) return undefined;
    const key = await signingKey();
    if (!key || !ob.jwsIssuer) throw new TypeError('x-jws-signature needs BANK_SIGNING_KEY and OB_JWS_ISS');
    return { ...key, issuer: ob.jwsIssuer, trustAnchor: ob.trustAnchor };
  }

  /** One call of the API with the FAPI headers; POSTs carry an idempotency key and, when asked, a JWS. */
  async function send(
    method: 'GET' | 'POST',
    path: string,
    token: string,
    post?: { body: string; idempotencyKey: string },
  ): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      accept: 'application/json',
      'x-fapi-interaction-id': randomUUID(),
    };
    if (ob.financialId !== undefined) headers['x-fapi-financial-id'] = ob.financialId;
    if (post) {
      headers['content-type'] = 'application/json';
      headers['x-idempotency-key'] = post.idempotencyKey;
      const signer = await jwsSigner();
      if (signer) headers['x-jws-signature'] = await signDetachedJws(signer, post.body, clock.now());
    }
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
  }

  const profile: BankProfile = {
    async prepareAuthorization(payment) {
      const initiation = buildInitiation(settings, {
        id: payment.id,
        amount: formatMinorUnits(payment.amount, payment.currency),
        currency: payment.currency.toUpperCase(),
      });
      const body = JSON.stringify({ Data: { Initiation: initiation }, Risk: buildRisk(settings) });
      const token = await credentials.get().catch((err: unknown) => {
        const refused = err instanceof ClientCredentialsError && err.kind === 'refused';
        throw new BackchannelError(refused ? 'bank_client_error' : 'bank_unavailable', 'no client-credentials token');
      });
      let response: Dispatcher.ResponseData;
      try {
        // Max40Text; distinct from the payment's key, which is the payment id itself
        response = await send('POST', '/domestic-payment-consents', token, {
          body,
          idempotencyKey: `${payment.id}-consent`,
        });
      } catch (cause) {
        throw new BackchannelError('bank_unavailable', `consent request failed: ${describeNetworkError(cause)}`);
      }
      if (response.statusCode === 401) credentials.invalidate(token);
      const consentId = await processConsentResponse(response, initiation, clock.now());
      const intent = { [INTENT_ID_CLAIM]: { value: consentId, essential: true } };
      return { consentId, requestClaims: { id_token: intent, userinfo: intent }, sendAuthorizationDetails: false };
    },
  };

  const client: UkOpenBankingClient = {
    async createPayment(request) {
      if (request.consentId === undefined) return { kind: 'rejected', reason: 'no_consent' };
      const initiation = buildInitiation(settings, {
        id: request.endToEndId,
        amount: request.amount,
        currency: request.currency,
      });
      const body = JSON.stringify({
        Data: { ConsentId: request.consentId, Initiation: initiation },
        Risk: buildRisk(settings),
      });
      let response: Dispatcher.ResponseData;
      try {
        response = await send('POST', '/domestic-payments', request.accessToken, {
          body,
          idempotencyKey: request.idempotencyKey,
        });
      } catch (cause) {
        return { kind: 'retry', reason: `network: ${describeNetworkError(cause)}` };
      }
      return processPaymentResponse(
        response,
        { consentId: request.consentId, bankPaymentId: undefined, fourXxIsFinal: true },
        clock.now(),
      );
    },
    async paymentStatus({ bankPaymentId }) {
      return getPayment(bankPaymentId);
    },
    // The port's lookup (reconcile use case) goes through the profile's own GET endpoints.
    findPayment(endToEndId, known) {
      return client.lookupPayment({
        endToEndId,
        bankPaymentId: known?.bankPaymentId ?? null,
        consentId: known?.consentId ?? null,
      });
    },
    async lookupPayment(reference) {
      if (reference.bankPaymentId !== null) {
        const outcome = await getPayment(reference.bankPaymentId);
        switch (outcome.kind) {
          case 'accepted':
          case 'rejected': {
            const status = outcome.kind;
            const { endToEndId, bankPaymentId } = reference;
            return { kind: 'found', payments: [{ bankPaymentId, status, endToEndId }] };
          }
          case 'pending':
            return { kind: 'unavailable', reason: 'payment still pending at the bank' };
          case 'refused': // a refused status lookup says nothing about the payment (fourXxIsFinal is false here)
            return { kind: 'unavailable', reason: outcome.reason };
          case 'retry':
            return { kind: 'unavailable', reason: outcome.reason, ...retryAfter(outcome.retryAfterMs) };
        }
      }
      if (reference.consentId === null) return { kind: 'found', payments: [] };
      return lookupConsent(reference.consentId);
    },
    close: () => Promise.resolve(),
  };

  /** GET /domestic-payments/{id} with the client-credentials token; no 4xx here is an answer about the payment. */
  async function getPayment(bankPaymentId: string): Promise<BankPaymentOutcome> {
    let token: string;
    try {
      token = await credentials.get();
    } catch (err) {
      return { kind: 'retry', reason: err instanceof Error ? err.message : 'no client-credentials token' };
    }
    let response: Dispatcher.ResponseData;
    try {
      response = await send('GET', `/domestic-payments/${encodeURIComponent(bankPaymentId)}`, token);
    } catch (cause) {
      return { kind: 'retry', reason: `network: ${describeNetworkError(cause)}` };
    }
    if (response.statusCode === 401) credentials.invalidate(token);
    return processPaymentResponse(response, { consentId: undefined, bankPaymentId, fourXxIsFinal: false }, clock.now());
  }

  /** GET /domestic-payment-consents/{id}: was a payment made with this consent? */
  async function lookupConsent(consentId: string): Promise<DomesticPaymentLookup> {
    let response: Dispatcher.ResponseData;
    try {
      const token = await credentials.get();
      response = await send('GET', `/domestic-payment-consents/${encodeURIComponent(consentId)}`, token);
      if (response.statusCode === 401) credentials.invalidate(token);
    } catch (err) {
      return { kind: 'unavailable', reason: err instanceof Error ? err.name : 'consent lookup failed' };
    }
    const status = await readConsentStatus(response);
    if (status === undefined) return { kind: 'unavailable', reason: `consent lookup answered ${response.statusCode}` };
    return status === 'Consumed'
      ? { kind: 'unavailable', reason: 'consent consumed by a payment whose id is unknown' }
      : { kind: 'found', payments: [] };
  }

  return { client, profile };
}

function retryAfter(ms: number | undefined): { retryAfterMs?: number } {
  return ms === undefined ? {} : { retryAfterMs: ms };
}
