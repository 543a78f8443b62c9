import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis, type RedisOptions } from 'ioredis';

const LUA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'lua');

/** The Lua scripts, as commands on every connection (`defineCommand` loads each once, then EVALSHA). */
export interface ScriptCommands {
  claim(due: string, leases: string, now: number, leaseUntil: number, limit: number): Promise<string[]>;
  transition(...args: (string | number)[]): Promise<number>;
  idempotencyClaim(key: string, fingerprint: string, inFlightSeconds: number, keepSeconds: number): Promise<unknown>;
}

export type RedisClient = Redis & ScriptCommands;

/** Script files are named `<command>-<numberOfKeys>.lua`, as bullmq names them. */
const SCRIPTS: Record<keyof ScriptCommands, string> = {
  claim: 'claim-2.lua',
  transition: 'transition-5.lua',
  idempotencyClaim: 'idempotency-claim-1.lua',
};

export function createRedis(url: string, options: RedisOptions = {}): RedisClient {
  const redis = new Redis(url, { maxRetriesPerRequest: 2, enableOfflineQueue: true, ...options });
  for (const [name, file] of Object.entries(SCRIPTS)) {
    const numberOfKeys = Number(/-(\d+)\.lua$/.exec(file)?.[1]);
    redis.defineCommand(name, { numberOfKeys, lua: readFileSync(join(LUA_DIR, file), 'utf8') });
  }
  return redis as RedisClient;
}
