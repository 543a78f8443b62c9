import { readFileSync } from 'node:fs';

/** The sandbox's Lua scripts (src/sandbox/lua, copied into dist by the build), read once. */
function load(name: string): string {
  return readFileSync(new URL(`./lua/${name}`, import.meta.url), 'utf8');
}

export const CONSUME_1 = load('consume-1.lua');
export const CHECK_POLL_1 = load('check-poll-1.lua');
export const OB_MOVE_1 = load('ob-move-1.lua');
