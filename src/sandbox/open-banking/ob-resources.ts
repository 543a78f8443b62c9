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

interface ResourceStore {
  redis: SandboxRedis;
  keys: SandboxKeys;
}

const now = (): string => new Date().toISOString();

/** Moves a resource's status `from` → `to` in one script call; 1 when it moved. */
function moveStatus(store: ResourceStore, key: string, from: string, to: string): Promise<number> {
  return store.redis.obMove(key, from, to, now());
}

async function readResource<T>(
  store: ResourceStore,
  key: string,
): Promise<(T & { status: string; updated: string }) | undefined> {
  const fields = await store.redis.hgetall(key);
  if (fields.json === undefined || fields.status === undefined || fields.updated === undefined) return undefined;
  return { ...(JSON.parse(fields.json) as T), status: fields.status, updated: fields.updated };
}

/** The immutable part as one JSON field, status and its time beside it (only obMove changes them). */
async function writeResource(
  store: ResourceStore,
  key: string,
  resource: { status: string; updated: string },
): Promise<void> {
  const { status, updated, ...fixed } = resource;
  await store.redis
    .multi()
    .hset(key, 'json', JSON.stringify(fixed), 'status', status, 'updated', updated)
    .expire(key, KEEP_SECONDS)
    .exec();
}

/** An AwaitingAuthorisation consent past its expiry is Rejected on read. */
async function getConsent(store: ResourceStore, consentId: string): Promise<Consent | undefined> {
  if (!SAFE_ID.test(consentId)) return undefined;
  const consent = await readResource<Consent>(store, store.keys.obConsent(consentId));
  if (consent?.status === 'AwaitingAuthorisation' && Date.parse(consent.expiresAt) <= Date.now()) {
    await moveStatus(store, store.keys.obConsent(consentId), 'AwaitingAuthorisation', 'Rejected');
    return getConsent(store, consentId);
  }
  return consent;
}

/** A Pending payment past its settle time is AcceptedSettlementCompleted on read. */
async function getPayment(store: ResourceStore, paymentId: string): Promise<DomesticPayment | undefined> {
  if (!SAFE_ID.test(paymentId)) return undefined;
  const payment = (await readResource<DomesticPayment>(store, store.keys.obPayment(paymentId))) as
    DomesticPayment | undefined;
  if (payment?.status === 'Pending' && Date.parse(payment.settleAt) <= Date.now()) {
    await moveStatus(store, store.keys.obPayment(paymentId), 'Pending', 'AcceptedSettlementCompleted');
    return getPayment(store, paymentId);
  }
  return payment;
}

async function createConsent(
  store: ResourceStore,
  input: Pick<Consent, 'clientId' | 'initiation' | 'risk'>,
  ttlSeconds: number,
): Promise<Consent> {
  const created = now();
  const consent: Consent = {
    ...input,
    consentId: `sdp-${randomBytes(12).toString('base64url')}`,
    status: 'AwaitingAuthorisation',
    created,
    updated: created,
    expiresAt: new Date(Date.now() + ttlSeconds * 1000).toISOString(),
  };
  await writeResource(store, store.keys.obConsent(consent.consentId), consent);
  return consent;
}

async function createPayment(
  store: ResourceStore,
  consent: Consent,
  settleDelayMs: number,
): Promise<DomesticPayment | undefined> {
  if ((await moveStatus(store, store.keys.obConsent(consent.consentId), 'Authorised', 'Consumed')) !== 1)
    return undefined;
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
  await writeResource(store, store.keys.obPayment(payment.paymentId), payment);
  return payment;
}

export function createObResources(redis: SandboxRedis, keys: SandboxKeys): ObResources {
  const store: ResourceStore = { redis, keys };
  return {
    createConsent: (input, ttlSeconds) => createConsent(store, input, ttlSeconds),
    getConsent: (consentId) => getConsent(store, consentId),
    async decideConsent(consentId, to) {
      if ((await getConsent(store, consentId))?.status !== 'AwaitingAuthorisation') return false;
      return (await moveStatus(store, keys.obConsent(consentId), 'AwaitingAuthorisation', to)) === 1;
    },
    createPayment: (consent, settleDelayMs) => createPayment(store, consent, settleDelayMs),
    getPayment: (paymentId) => getPayment(store, paymentId),
  };
}
