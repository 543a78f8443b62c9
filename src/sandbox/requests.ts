import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { SandboxKeys } from './keys.js';

/**
 * The authentication requests as the bank app ("the phone") sees them. The record keeps the
 * auth_req_id only to call provider.backchannelResult(); it is never printed nor sent to the page.
 */
export type RequestStatus = 'pending' | 'approved' | 'denied' | 'expired';

export interface AuthenticationRequestRecord {
  id: string;
  authReqId: string;
  clientId: string;
  clientName: string;
  login: string;
  bindingMessage: string;
  amount: string;
  currency: string;
  creditorName: string;
  creditorIban: string;
  status: RequestStatus;
  createdAt: string;
  expiresAt: string;
  decidedAt?: string;
  /** The Open Banking consent this request authorises (openbanking_intent_id), if any. */
  consentId?: string;
}

/** What the page and SandboxBank.pending() may show. */
export interface PublicRequest {
  id: string;
  login: string;
  merchant: string;
  bindingMessage: string;
  amount: string;
  currency: string;
  creditorName: string;
  status: RequestStatus;
  createdAt: string;
  expiresAt: string;
  decidedAt?: string;
}

export interface RequestStore {
  create(input: Omit<AuthenticationRequestRecord, 'id' | 'status' | 'createdAt'>): Promise<AuthenticationRequestRecord>;
  get(id: string): Promise<AuthenticationRequestRecord | undefined>;
  /** Newest first; expired pending ones are reported as `expired`. */
  list(login?: string): Promise<AuthenticationRequestRecord[]>;
  /** Moves a pending request to approved/denied; false when it was not pending any more. */
  decide(id: string, status: 'approved' | 'denied'): Promise<boolean>;
}

/** Records stay a day after expiry for the app's history. */
const HISTORY_SECONDS = 24 * 3600;

export function toPublicRequest(record: AuthenticationRequestRecord): PublicRequest {
  return {
    id: record.id,
    login: record.login,
    merchant: record.clientName,
    bindingMessage: record.bindingMessage,
    amount: record.amount,
    currency: record.currency,
    creditorName: record.creditorName,
    status: record.status,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    ...(record.decidedAt === undefined ? {} : { decidedAt: record.decidedAt }),
  };
}

function withExpiry(record: AuthenticationRequestRecord, now: number): AuthenticationRequestRecord {
  if (record.status === 'pending' && Date.parse(record.expiresAt) <= now) return { ...record, status: 'expired' };
  return record;
}

export function createRequestStore(redis: Redis, keys: SandboxKeys): RequestStore {
  async function get(id: string): Promise<AuthenticationRequestRecord | undefined> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return undefined;
    const raw = await redis.get(keys.request(id));
    return raw === null ? undefined : withExpiry(JSON.parse(raw) as AuthenticationRequestRecord, Date.now());
  }

  return {
    async create(input) {
      const record: AuthenticationRequestRecord = {
        ...input,
        id: randomBytes(12).toString('base64url'),
        status: 'pending',
        createdAt: new Date().toISOString(),
      };
      const ttl = Math.ceil((Date.parse(record.expiresAt) - Date.now()) / 1000) + HISTORY_SECONDS;
      await redis
        .multi()
        .set(keys.request(record.id), JSON.stringify(record), 'EX', ttl)
        .zadd(keys.requestIndex(), Date.now(), record.id)
        .exec();
      return record;
    },
    get,
    async list(login) {
      const ids = await redis.zrevrange(keys.requestIndex(), 0, 199);
      const records = await Promise.all(ids.map(get));
      const stale = ids.filter((_id, index) => records[index] === undefined);
      if (stale.length > 0) await redis.zrem(keys.requestIndex(), ...stale);
      return records.filter(
        (record): record is AuthenticationRequestRecord =>
          record !== undefined && (login === undefined || record.login === login),
      );
    },
    async decide(id, status) {
      const current = await get(id);
      if (current?.status !== 'pending') return false;
      // SET NX on a decision key: two clicks (or the page and an auto-approval) cannot both decide.
      const claimed = await redis.set(keys.requestDecision(id), status, 'EX', HISTORY_SECONDS, 'NX');
      if (claimed === null) return false;
      const next = { ...current, status, decidedAt: new Date().toISOString() };
      await redis.set(keys.request(id), JSON.stringify(next), 'KEEPTTL');
      return true;
    },
  };
}
