import type { Redis } from 'ioredis';
import type { SandboxKeys } from './keys.js';

/** A transfer the sandbox booked, through either payment API; one Redis list, oldest first. */
export interface Transfer {
  bankPaymentId: string;
  /** Who paid (sandbox payment API only; the Open Banking API's transfers are not listed by the lookup). */
  clientId?: string;
  /** SHA-256 thumbprint of the client certificate the payment was made with (the token's cnf). */
  certThumbprint?: string;
  idempotencyKey: string;
  amount: string;
  currency: string;
  creditorIban: string;
  endToEndId: string;
}

export async function readTransfers(redis: Redis, keys: SandboxKeys): Promise<Transfer[]> {
  const raw = await redis.lrange(keys.transfers(), 0, -1);
  return raw.map((entry) => JSON.parse(entry) as Transfer);
}
