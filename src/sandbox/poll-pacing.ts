import type { KoaContextWithOIDC } from 'oidc-provider';
import type { SandboxKeys } from './keys.js';
import type { SandboxRedis } from './lua-scripts.js';

/**
 * CIBA Core §7.3 and §11: the `interval` a bc-authorize answer advertises is the minimum wait between
 * token polls, and a client that polls sooner gets `slow_down`. oidc-provider does neither, so the
 * sandbox keeps one small hash per request (keyed by a digest of the auth_req_id) and checks it
 * with check-poll-1.lua.
 */

/** Expired backchannel requests stay readable this long, so late polls get expired_token (CIBA Core §11). */
export const EXPIRED_GRACE_SECONDS = 600;
/** The longest a poll record must last: the longest request lifetime oidc-provider keeps, plus the grace. */
const POLL_RECORD_TTL_MS = (3600 + EXPIRED_GRACE_SECONDS) * 1000;

export interface PollPacingDeps {
  redis: SandboxRedis;
  keys: SandboxKeys;
}

/** Starts the pacing of a new request: the first poll is on time after one interval. */
export async function startPollPacing(
  deps: PollPacingDeps,
  authReqId: string,
  intervalSeconds: number,
  expiresAtSeconds: number,
): Promise<void> {
  const intervalMs = intervalSeconds * 1000;
  await deps.redis
    .multi()
    .hset(deps.keys.poll(authReqId), 'next', Date.now() + intervalMs, 'interval', intervalMs)
    .pexpire(deps.keys.poll(authReqId), (expiresAtSeconds + EXPIRED_GRACE_SECONDS) * 1000 - Date.now())
    .exec();
}

/** Rewrites a too-early `authorization_pending` into `slow_down` (CIBA Core §11). */
export async function answerSlowDown(ctx: KoaContextWithOIDC, deps: PollPacingDeps): Promise<void> {
  const body = ctx.body as { error?: unknown } | undefined;
  if (ctx.oidc.route !== 'token' || body?.error !== 'authorization_pending') return;
  const authReqId = ctx.oidc.params?.auth_req_id;
  if (typeof authReqId !== 'string') return;
  const onTime = await deps.redis.checkPoll(deps.keys.poll(authReqId), Date.now(), POLL_RECORD_TTL_MS);
  if (onTime === 0) {
    ctx.status = 400;
    ctx.body = { error: 'slow_down', error_description: 'you are polling too quickly; add 5 seconds to the interval' };
  }
}
