import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Redis } from 'ioredis';
import type { SandboxKeys } from '../keys.js';
import { canonicalJson, ObError } from './ob-http.js';

/** A real ASPSP keeps x-idempotency-key answers 24 h (OB Read/Write API, Idempotency). */
const IDEMPOTENCY_SECONDS = 24 * 3600;

/** The kind of resource a POST creates: keys of one kind never replay another. */
export type IdempotentResource = 'consent' | 'payment';

/**
 * x-idempotency-key: the first request with a key creates; a replay with the same body gets the
 * same resource (in its current status), another body with the key is refused. When `create`
 * throws, nothing was created and the key is free again.
 */
export async function createOnce(
  deps: { redis: Redis; keys: SandboxKeys },
  req: IncomingMessage,
  scope: { clientId: string; resource: IdempotentResource; rawBody: string },
  create: () => Promise<string>,
): Promise<{ id: string; replayed: boolean }> {
  const key = req.headers['x-idempotency-key'];
  if (typeof key !== 'string' || key.length === 0 || key.length > 40) {
    throw new ObError(400, 'UK.OBIE.Header.Missing', 'x-idempotency-key (Max40Text) is required');
  }
  const slot = deps.keys.obIdempotency(scope.clientId, scope.resource, key);
  const fingerprint = createHash('sha256')
    .update(canonicalJson(JSON.parse(scope.rawBody)))
    .digest('base64url');
  const claimed = await deps.redis.set(slot, JSON.stringify({ fingerprint }), 'EX', IDEMPOTENCY_SECONDS, 'NX');
  if (claimed === null) return { id: await storedResourceId(deps.redis, slot, fingerprint), replayed: true };
  try {
    const id = await create();
    await deps.redis.set(slot, JSON.stringify({ fingerprint, id }), 'KEEPTTL');
    return { id, replayed: false };
  } catch (error) {
    await deps.redis.del(slot); // nothing was created: the key is free again
    throw error;
  }
}

/** The resource a key already created, when the body is the same; 409 while the first request is still at it. */
async function storedResourceId(redis: Redis, slot: string, fingerprint: string): Promise<string> {
  const stored = JSON.parse((await redis.get(slot)) ?? '{}') as { fingerprint?: string; id?: string };
  if (stored.fingerprint !== fingerprint) {
    throw new ObError(400, 'UK.OBIE.Resource.ConsentMismatch', 'x-idempotency-key reused with another body');
  }
  if (stored.id === undefined)
    throw new ObError(409, 'UK.OBIE.Resource.InProgress', 'request in progress', { 'retry-after': '1' });
  return stored.id;
}
