import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** The sandbox's Lua scripts (src/sandbox/lua, copied into dist by the build), read once. */
function load(name: string): string {
  return readFileSync(new URL(`./lua/${name}`, import.meta.url), 'utf8');
}

/** The scripts as commands (`defineCommand` loads each once per connection, then EVALSHA). */
export interface SandboxScriptCommands {
  /** consume-1.lua: marks a stored model instance consumed; 1 when marked, 0 when the key is missing. */
  consumeModel(modelKey: string, consumedAtSeconds: number): Promise<number>;
  /** check-poll-1.lua: 1 when a token poll is on time, 0 when too early (answer slow_down). */
  checkPoll(pollKey: string, nowMs: number, ttlMs: number): Promise<number>;
  /** ob-move-1.lua: moves an Open Banking resource's status once; 1 when moved, 0 otherwise. */
  obMove(resourceKey: string, from: string, to: string, updatedAt: string): Promise<number>;
}

export type SandboxRedis = Redis & SandboxScriptCommands;

export function defineSandboxScripts(redis: Redis): SandboxRedis {
  redis.defineCommand('consumeModel', { numberOfKeys: 1, lua: load('consume-1.lua') });
  redis.defineCommand('checkPoll', { numberOfKeys: 1, lua: load('check-poll-1.lua') });
  redis.defineCommand('obMove', { numberOfKeys: 1, lua: load('ob-move-1.lua') });
  return redis as SandboxRedis;
}
