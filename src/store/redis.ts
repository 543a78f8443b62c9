import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis, type RedisOptions } from 'ioredis';

const LUA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'lua');

/** The Lua scripts, as commands on every connection (`defineCommand` loads each once, then EVALSHA). */
export interface ScriptCommands {
  claim(due: string, leases: string, now: number, leaseUntil: number, limit: number): Promise<string[]>;
  /** Completes (at = '') or reschedules leased work, only while the lease is still the caller's; 1 when it was. */
  settle(
    due: string,
    leases: string,
    pinged: string,
    member: string,
    leaseUntil: number,
    at: number | '',
    now: number,
  ): Promise<number>;
  /** Extends leases still held with the given expiries to `leaseUntil`; per pair 1 when renewed, 0 when lost. */
  renew(leases: string, leaseUntil: number, ...memberAndHeldUntil: (string | number)[]): Promise<number[]>;
  /** Ping: moves waiting work earlier, or marks leased work to be due at once when it is settled; 1 when either. */
  advance(due: string, leases: string, pinged: string, at: number, member: string): Promise<number>;
  transition(...args: (string | number)[]): Promise<number>;
  idempotencyClaim(key: string, fingerprint: string, inFlightSeconds: number, keepSeconds: number): Promise<unknown>;
}

export type RedisClient = Redis & ScriptCommands;

/** Script files are named `<command>-<numberOfKeys>.lua`, as bullmq names them. */
const SCRIPTS: Record<keyof ScriptCommands, string> = {
  claim: 'claim-2.lua',
  settle: 'settle-3.lua',
  renew: 'renew-1.lua',
  advance: 'advance-3.lua',
  transition: 'transition-3.lua',
  idempotencyClaim: 'idempotency-claim-1.lua',
};

/**
 * Once connected, commands fail at once while Redis is away instead of queueing: the API answers 503
 * `store_unavailable` straight away and the worker backs off, rather than both hanging. Commands
 * in flight when the connection drops are retried `maxRetriesPerRequest` times.
 */
function failFastOnceReady(redis: Redis): void {
  redis.once('ready', () => {
    redis.options.enableOfflineQueue = false;
  });
}

export function createRedis(url: string, options: RedisOptions = {}): RedisClient {
  const redis = new Redis(url, { maxRetriesPerRequest: 2, enableOfflineQueue: true, ...options });
  for (const [name, file] of Object.entries(SCRIPTS)) {
    const numberOfKeys = Number(/-(\d+)\.lua$/.exec(file)?.[1]);
    redis.defineCommand(name, { numberOfKeys, lua: readFileSync(join(LUA_DIR, file), 'utf8') });
  }
  failFastOnceReady(redis);
  // Copies (subscribers) start with the queue on, so a SUBSCRIBE sent while connecting waits for the connection.
  const duplicate = redis.duplicate.bind(redis);
  redis.duplicate = (override?: Partial<RedisOptions>) => {
    const copy = duplicate({ enableOfflineQueue: true, ...override });
    failFastOnceReady(copy);
    return copy;
  };
  // Connection errors are reported by the commands that fail; without a listener ioredis prints each retry.
  redis.on('error', () => undefined);
  return redis as RedisClient;
}

/** ioredis' ways of saying "Redis is not there right now" (no connection, retries used up, loading, failover). */
export function isStoreUnavailableError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  if (/enableOfflineQueue|Connection is closed|Redis connection is not ready/.test(err.message)) return true;
  return err.name === 'ReplyError' && /^(LOADING|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/.test(err.message);
}

/** True when a Redis answers PING at `url` within about a second; never throws, never retries. */
export async function redisAnswers(url: string): Promise<boolean> {
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}
