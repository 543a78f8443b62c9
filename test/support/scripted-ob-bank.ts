import { createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { JWK } from 'jose';
import { canonicalJson, verifyDetachedJws, ObError } from '../../src/sandbox/open-banking/ob-http.js';
import type { DevCertificates } from '../../src/sandbox/certs.js';
import { withThumbprintKids } from '../../src/sandbox/provider.js';
import { requestedIntentId, type RecordedRequest, type Reply, type ScriptedOp } from './scripted-op.js';

/**
 * The Open Banking UK resources (v3.1.10 domestic payments) of the scripted bank, served by
 * `startScriptedOp({ openBanking: bank.handle })` on the same mTLS server as its OP. Well-mannered
 * by default: consents with a client-credentials token and a valid x-jws-signature, payments with
 * the CIBA token of that consent, x-idempotency-key replays answered with the same resource. A test
 * sets the statuses a payment goes through (`paymentStatuses`: the POST answers the first, each GET
 * moves one on) or scripts any answer with `op.script('open-banking', …)`.
 */

export const OB_BASE_PATH = '/api/open-banking/v3.1/pisp';

export interface ScriptedConsent {
  consentId: string;
  status: 'AwaitingAuthorisation' | 'Authorised' | 'Rejected' | 'Consumed';
  initiation: unknown;
  risk: unknown;
}

export interface ScriptedDomesticPayment {
  paymentId: string;
  consentId: string;
  idempotencyKey: string;
  status: string;
  /** Statuses still to come, one per GET. */
  upcoming: string[];
  initiation: unknown;
}

export interface ScriptedObBank {
  readonly consents: Map<string, ScriptedConsent>;
  readonly payments: Map<string, ScriptedDomesticPayment>;
  /** The statuses of the next payments (default Pending, then AcceptedSettlementCompleted). */
  paymentStatuses(...statuses: string[]): void;
  handle(req: RecordedRequest, op: ScriptedOp): Promise<Reply>;
  reset(): void;
}

export function obError(status: number, errorCode: string, message = errorCode): Reply {
  return {
    status,
    json: { Code: String(status), Message: message, Errors: [{ ErrorCode: errorCode, Message: message }] },
  };
}

export function createScriptedObBank(certs: DevCertificates): ScriptedObBank {
  const shopKeys: JWK[] = withThumbprintKids({
    keys: [createPublicKey(readFileSync(certs.signingKeyPs256)).export({ format: 'jwk' })],
  }).keys;
  const consents = new Map<string, ScriptedConsent>();
  const payments = new Map<string, ScriptedDomesticPayment>();
  const consentKeys = new Map<string, string>();
  let statuses = ['Pending', 'AcceptedSettlementCompleted'];

  const now = () => new Date().toISOString();
  const consentView = (c: ScriptedConsent) => ({
    Data: {
      ConsentId: c.consentId,
      Status: c.status,
      CreationDateTime: now(),
      StatusUpdateDateTime: now(),
      Initiation: c.initiation,
    },
    Risk: c.risk,
    Links: { Self: `${OB_BASE_PATH}/domestic-payment-consents/${c.consentId}` },
    Meta: {},
  });
  const paymentView = (p: ScriptedDomesticPayment) => ({
    Data: {
      DomesticPaymentId: p.paymentId,
      ConsentId: p.consentId,
      Status: p.status,
      CreationDateTime: now(),
      Initiation: p.initiation,
    },
    Links: { Self: `${OB_BASE_PATH}/domestic-payments/${p.paymentId}` },
    Meta: {},
  });
  const body = (req: RecordedRequest) => req.json as { Data?: Record<string, unknown>; Risk?: unknown } | undefined;

  async function postConsent(req: RecordedRequest): Promise<Reply> {
    await verifyDetachedJws(req.headers['x-jws-signature'], req.rawBody, shopKeys);
    const key = req.headers['x-idempotency-key'];
    if (typeof key !== 'string' || key === '') return obError(400, 'UK.OBIE.Header.Missing');
    const known = consents.get(consentKeys.get(key) ?? '');
    if (known) return { status: 201, json: consentView(known) };
    const consent: ScriptedConsent = {
      consentId: `cons_${randomBytes(8).toString('hex')}`,
      status: 'AwaitingAuthorisation',
      initiation: body(req)?.Data?.Initiation,
      risk: body(req)?.Risk,
    };
    consents.set(consent.consentId, consent);
    consentKeys.set(key, consent.consentId);
    return { status: 201, json: consentView(consent) };
  }

  async function postPayment(req: RecordedRequest, op: ScriptedOp): Promise<Reply> {
    await verifyDetachedJws(req.headers['x-jws-signature'], req.rawBody, shopKeys);
    const key = req.headers['x-idempotency-key'];
    if (typeof key !== 'string' || key === '') return obError(400, 'UK.OBIE.Header.Missing');
    const replay = [...payments.values()].find((p) => p.idempotencyKey === key);
    if (replay) return { status: 201, json: paymentView(replay) };
    const consentId = body(req)?.Data?.ConsentId;
    const consent = consents.get(typeof consentId === 'string' ? consentId : '');
    if (!consent || requestedIntentId(op.tokenOf(req)?.grant?.requestedClaims) !== consent.consentId) {
      return obError(403, 'UK.OBIE.Resource.ConsentMismatch');
    }
    if (canonicalJson(consent.initiation) !== canonicalJson(body(req)?.Data?.Initiation)) {
      return obError(400, 'UK.OBIE.Resource.ConsentMismatch');
    }
    if (consent.status === 'Consumed' || consent.status === 'Rejected') {
      return obError(400, 'UK.OBIE.Resource.InvalidConsentStatus');
    }
    consent.status = 'Consumed';
    const [first = 'Pending', ...upcoming] = statuses;
    const payment: ScriptedDomesticPayment = {
      paymentId: `dp_${randomBytes(8).toString('hex')}`,
      consentId: consent.consentId,
      idempotencyKey: key,
      status: first,
      upcoming,
      initiation: consent.initiation,
    };
    payments.set(payment.paymentId, payment);
    return { status: 201, json: paymentView(payment) };
  }

  function getPayment(id: string): Reply {
    const payment = payments.get(id);
    if (!payment) return obError(404, 'UK.OBIE.Resource.NotFound');
    payment.status = payment.upcoming.shift() ?? payment.status;
    return { status: 200, json: paymentView(payment) };
  }

  async function route(req: RecordedRequest, op: ScriptedOp): Promise<Reply> {
    const token = op.tokenOf(req);
    if (!req.clientCert?.authorized || token === undefined || token.thumbprint !== req.clientCert.thumbprint) {
      return obError(401, 'UK.OBIE.Unauthorized');
    }
    const path = req.path.slice(OB_BASE_PATH.length);
    const isClient = token.kind === 'client' && token.scope.split(' ').includes('payments');
    if (req.method === 'POST' && path === '/domestic-payment-consents' && isClient) return postConsent(req);
    if (req.method === 'POST' && path === '/domestic-payments' && token.kind === 'ciba') return postPayment(req, op);
    const get = /^\/(domestic-payments|domestic-payment-consents)\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && get && isClient) {
      if (get[1] === 'domestic-payments') return getPayment(get[2] ?? '');
      const consent = consents.get(get[2] ?? '');
      return consent ? { status: 200, json: consentView(consent) } : obError(404, 'UK.OBIE.Resource.NotFound');
    }
    return obError(403, 'UK.OBIE.Unauthorized', 'wrong token or endpoint');
  }

  return {
    consents,
    payments,
    paymentStatuses(...next) {
      statuses = next;
    },
    async handle(req, op) {
      try {
        return await route(req, op);
      } catch (error) {
        if (error instanceof ObError) return obError(error.status, error.errorCode, error.message);
        throw error;
      }
    },
    reset() {
      consents.clear();
      payments.clear();
      consentKeys.clear();
      statuses = ['Pending', 'AcceptedSettlementCompleted'];
    },
  };
}

/** The service's variables for the Open Banking UK profile against a scripted bank. */
export function openBankingEnv(op: ScriptedOp): Record<string, string> {
  return {
    BANK_PROFILE: 'uk-openbanking',
    BANK_API_URL: `${op.issuer}${OB_BASE_PATH}`,
    BANK_SIGNING_KEY: op.certs.signingKeyPs256,
    CIBA_SIGNED_REQUEST: 'true',
    CIBA_SCOPE: 'openid payments',
    OB_JWS_ISS: 'test-org/test-ssa',
    OB_CREDITOR_IDENTIFICATION: '40400411290112',
    OB_FINANCIAL_ID: '0015800001041RHAAY',
  };
}
