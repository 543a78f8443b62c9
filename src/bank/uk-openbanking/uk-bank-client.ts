import type { Dispatcher } from 'undici';
import { systemClock, type Clock } from '../../clock.js';
import type { Config, OpenBankingConfig } from '../../config.js';
import { createClientAuthentication, loadSigningKey, type SigningKey } from '../../ciba/client-auth.js';
import { createDiscovery } from '../../ciba/discovery.js';
import { memoize } from '../../ciba/index.js';
import type { BankProfile } from '../../payments/bank-profile.js';
import type { BankClient } from '../types.js';
import { createClientCredentials } from './client-credentials.js';
import {
  createConsent,
  getDomesticPayment,
  lookupDomesticPayment,
  submitDomesticPayment,
  type DomesticPaymentLookup,
  type DomesticPaymentReference,
  type ObStepContext,
} from './ob-steps.js';
import { createObTransport } from './ob-transport.js';

export type { DomesticPaymentLookup, DomesticPaymentReference } from './ob-steps.js';

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
 * until a final status (`client.paymentStatus`). The steps are in ob-steps.ts.
 * @see https://openbankinguk.github.io/read-write-api-site3/v3.1.10/resources-and-data-models/pisp/domestic-payment-consents.html
 */
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

/** The transport, the client-credentials token and the settings every step shares. */
function createStepContext(deps: UkOpenBankingDeps): ObStepContext {
  const { config, agent } = deps;
  const clock = deps.clock ?? systemClock;
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
  const base = new URL(config.bank.apiUrl.replace(/\/$/, ''));
  const openBanking = config.openBanking;
  return {
    send: createObTransport({ agent, clock, base, openBanking, signingKey }),
    credentials,
    settings: { ...openBanking, creditor: { ...openBanking.creditor, name: config.merchantName } },
    clock,
  };
}

export function createUkOpenBankingBank(deps: UkOpenBankingDeps): {
  client: UkOpenBankingClient;
  profile: BankProfile;
} {
  const context = createStepContext(deps);
  const profile: BankProfile = {
    prepareAuthorization: (payment) => createConsent(context, payment),
  };
  const client: UkOpenBankingClient = {
    createPayment: (request) => submitDomesticPayment(context, request),
    paymentStatus: ({ bankPaymentId }) => getDomesticPayment(context, bankPaymentId),
    // The port's lookup (reconcile use case) goes through the profile's own GET endpoints.
    findPayment: (endToEndId, known) =>
      lookupDomesticPayment(context, {
        endToEndId,
        bankPaymentId: known?.bankPaymentId ?? null,
        consentId: known?.consentId ?? null,
      }),
    lookupPayment: (reference) => lookupDomesticPayment(context, reference),
    close: () => Promise.resolve(),
  };
  return { client, profile };
}
