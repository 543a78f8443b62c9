import type { Adapter, AdapterFactory, AdapterPayload } from 'oidc-provider';
import type { SandboxKeys } from './keys.js';
import type { SandboxRedis } from './lua-scripts.js';

/** Models whose instances belong to a grant and go when the grant is revoked. */
const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

/**
 * oidc-provider's storage on Redis: every model instance is one JSON string with the model's TTL,
 * so pending backchannel requests, grants and tokens survive a restart of the sandbox bank.
 * Modelled on the adapter interface documented in oidc-provider's README ("Adapter").
 */
export function createRedisAdapterFactory(
  redis: SandboxRedis,
  keys: SandboxKeys,
  /** Seconds to keep a model past its expiry, so oidc-provider can still tell "expired" from "unknown". */
  graceSeconds: Readonly<Record<string, number>> = {},
): AdapterFactory {
  return (name: string): Adapter => {
    const key = (id: string): string => keys.oidcModel(name, id);
    const grace = graceSeconds[name] ?? 0;

    async function findKey(lookup: string): Promise<AdapterPayload | undefined> {
      const id = await redis.get(lookup);
      return id === null ? undefined : find(id);
    }

    async function find(id: string): Promise<AdapterPayload | undefined> {
      const raw = await redis.get(key(id));
      return raw === null ? undefined : (JSON.parse(raw) as AdapterPayload);
    }

    return {
      async upsert(id, payload, ttl) {
        const expiresIn = ttl === undefined || ttl <= 0 ? undefined : ttl + grace;
        const multi = redis.multi();
        const value = JSON.stringify(payload);
        if (expiresIn !== undefined) multi.set(key(id), value, 'EX', expiresIn);
        else multi.set(key(id), value);
        if (GRANTABLE.has(name) && payload.grantId !== undefined) {
          const grantKey = keys.oidcGrant(payload.grantId);
          multi.sadd(grantKey, key(id));
          if (expiresIn !== undefined) {
            // The index lives at least as long as its longest member (EXPIRE GT keeps a longer TTL).
            multi.expire(grantKey, expiresIn, 'GT');
            multi.expire(grantKey, expiresIn, 'NX');
          }
        }
        if (payload.userCode !== undefined) {
          multi.set(keys.oidcUserCode(payload.userCode), id, 'EX', Math.max(expiresIn ?? 0, 1));
        }
        if (payload.uid !== undefined) {
          multi.set(keys.oidcUid(payload.uid), id, 'EX', Math.max(expiresIn ?? 0, 1));
        }
        await multi.exec();
      },
      find,
      findByUserCode: (userCode) => findKey(keys.oidcUserCode(userCode)),
      findByUid: (uid) => findKey(keys.oidcUid(uid)),
      async consume(id) {
        await redis.consumeModel(key(id), Math.floor(Date.now() / 1000));
      },
      async destroy(id) {
        await redis.del(key(id));
      },
      async revokeByGrantId(grantId) {
        const grantKey = keys.oidcGrant(grantId);
        const members = await redis.smembers(grantKey);
        await redis.del(grantKey, ...members);
      },
    };
  };
}
