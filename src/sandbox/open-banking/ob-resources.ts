import { randomBytes } from 'node:crypto';
import type { SandboxKeys } from '../keys.js';
import type { SandboxRedis } from '../lua-scripts.js';

/**
 * The sandbox bank's Open Banking UK resources (v3.1.10): domestic-payment consents and domestic
 * payments, one Redis hash each. The immutable part (client, Initiation, Risk, times) is one JSON
 * field; `status` moves only through ob-move-1.lua (`obMove`), so two approvals or two payments cannot both win.
 */

export type ConsentStatus = 'AwaitingAuthorisation' | 'Authorised' | 'Rejected' | 'Consumed';
export type PaymentStatus = 'Pending' | 'AcceptedSettlementCompleted' | 'Rejected';

export interface Consent {
  consentId: string;
  clientId: string;
  status: ConsentStatus;
  initiation: Record<string, unknown> & {
    InstructedAmount: { Amount: string; Currency: string };
    CreditorAccount: { Identification: string; Name?: string | undefined };
    EndToEndIdentification: string;
  };
  risk: Record<string, unknown>;
  created: string;
  updated: string;
  /** An AwaitingAuthorisation consent not authorised by then reads as Rejected. */
  expiresAt: string;
}

export interface DomesticPayment {
  paymentId: string;
  consentId: string;
  clientId: string;
  status: PaymentStatus;
  initiation: Consent['initiation'];
  created: string;
  updated: string;
  /** When a Pending payment settles (AcceptedSettlementCompleted), decided lazily on read. */
  settleAt: string;
}

/** Resources are kept a week (the idempotency window of a real ASPSP is 24 h). */
const KEEP_SECONDS = 7 * 24 * 3600;

export interface ObResources {
  createConsent(input: Pick<Consent, 'clientId' | 'initiation' | 'risk'>, ttlSeconds: number): Promise<Consent>;
  getConsent(consentId: string): Promise<Consent | undefined>;
  /** AwaitingAuthorisation → to; false when the consent is in another status (or expired: then it is Rejected). */
  decideConsent(consentId: string, to: 'Authorised' | 'Rejected'): Promise<boolean>;
  /** Authorised → Consumed and a Pending payment, atomically per consent; undefined when not Authorised. */
  createPayment(consent: Consent, settleDelayMs: number): Promise<DomesticPayment | undefined>;
  getPayment(paymentId: string): Promise<DomesticPayment | undefined>;
}

const SAFE_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function createObResources(redis: SandboxRedis, keys: SandboxKeys): ObResources {
  const now = () => new Date().toISOString();
  const move = (key: string, from: string, to: string) => redis.obMove(key, from, to, now());

  async function readHash<T>(key: string): Promise<(T & { status: string; updated: string }) | undefined> {
    const h = await redis.hgetall(key);
    if (h.json === undefined || h.status === undefined || h.updated === undefined) return undefined;
    return { ...(JSON.parse(h.json) as T), status: h.status, updated: h.updated };
  }

  async function getConsent(consentId: string): Promise<Consent | undefined> {
    if (!SAFE_ID.test(consentId)) return undefined;
    const consent = await readHash<Consent>(keys.obConsent(consentId));
    if (consent?.status === 'AwaitingAuthorisation' && Date.parse(consent.expiresAt) <= Date.now()) {
      await move(keys.obConsent(consentId), 'AwaitingAuthorisation', 'Rejected');
      return getConsent(consentId);
    }
    return consent;
  }

  async function getPayment(paymentId: string): Promise<DomesticPayment | undefined> {
    if (!SAFE_ID.test(paymentId)) return undefined;
    const payment = (await readHash<DomesticPayment>(keys.obPayment(paymentId))) as DomesticPayment | undefined;
    if (payment?.status === 'Pending' && Date.parse(payment.settleAt) <= Date.now()) {
      await move(keys.obPayment(paymentId), 'Pending', 'AcceptedSettlementCompleted');
      return getPayment(paymentId);
    }
    return payment;
  }

  return {
    async createConsent(input, ttlSeconds) {
      const created = now();
      const consent: Consent = {
        ...input,
        consentId: `sdp-${randomBytes(12).toString('base64url')}`,
        status: 'AwaitingAuthorisation',
        created,
        updated: created,
        expiresAt: new Date(Date.now() + ttlSeconds * 1000).toISOString(),
      };
      const { status, updated, ...fixed } = consent;
      const key = keys.obConsent(consent.consentId);
      await redis
        .multi()
        .hset(key, 'json', JSON.stringify(fixed), 'status', status, 'updated', updated)
        .expire(key, KEEP_SECONDS)
        .exec();
      return consent;
    },
    getConsent,
    async decideConsent(consentId, to) {
      if ((await getConsent(consentId))?.status !== 'AwaitingAuthorisation') return false;
      return (await move(keys.obConsent(consentId), 'AwaitingAuthorisation', to)) === 1;
    },
    async createPayment(consent, settleDelayMs) {
      if ((await move(keys.obConsent(consent.consentId), 'Authorised', 'Consumed')) !== 1) return undefined;
      const created = now();
      const payment: DomesticPayment = {
        paymentId: `sdpp-${randomBytes(12).toString('base64url')}`,
        consentId: consent.consentId,
        clientId: consent.clientId,
        status: 'Pending',
        initiation: consent.initiation,
        created,
        updated: created,
        settleAt: new Date(Date.now() + settleDelayMs).toISOString(),
      };
      const { status, updated, ...fixed } = payment;
      const key = keys.obPayment(payment.paymentId);
      await redis
        .multi()
        .hset(key, 'json', JSON.stringify(fixed), 'status', status, 'updated', updated)
        .expire(key, KEEP_SECONDS)
        .exec();
      return payment;
    },
    getPayment,
  };
}
