import { randomUUID } from 'node:crypto';
import { judgeKeyCheck, KeyCheckError, keyFingerprint, sealKeyCheck } from '../crypto/key-check.js';
import type { Logger } from '../logger.js';
import { DATA_LAYOUT_VERSION } from './data-layout.js';
import type { Keys } from './keys.js';
import { isStoreUnavailableError, type RedisClient } from './redis.js';

/**
 * How long a process's key registration lives without renewal, and how often it is renewed. A
 * crashed process's entry blocks an incompatible start for at most this long.
 *
 * CIBA_INTERNAL_KEY_HOLDER_TTL_MS (undocumented, not in config.ts: not an operator setting) lets the
 * key-check tests shorten it: every refused start waits it out, and with child processes that cost
 * most of the suite's time. Read here only, so no other code comes to depend on it.
 */
export const KEY_HOLDER_TTL_MS = internalTtlMs(process.env.CIBA_INTERNAL_KEY_HOLDER_TTL_MS) ?? 10_000;
const RENEW_EVERY_MS = KEY_HOLDER_TTL_MS / 3;
const RETRY_MS = 1000;

export interface KeyHolder {
  /** Stops renewing and removes this process's entry. */
  release(): Promise<void>;
}

interface KeyCheckDeps {
  redis: RedisClient;
  keys: Keys;
  tokenKeys: readonly Buffer[];
  logger: Logger;
  /** Tests: the data layout version this process claims (default DATA_LAYOUT_VERSION). */
  layoutVersion?: number;
  /**
   * A renewal found a live process this one cannot share the deployment with (one started while
   * this one's entry had lapsed, e.g. Redis was away longer than KEY_HOLDER_TTL_MS): called once,
   * with the one line to print; this process must stop sealing and claiming, and exit.
   */
  onConflict?: (err: KeyCheckError) => void;
}

/**
 * At start-up, before any work, two checks that processes of a deployment can open each other's
 * sealed tokens (a token sealed by one and opened by another must never fail a payment):
 *
 * 1. Against what is stored: the deployment's key check value (sealed with the first key of the
 *    first process) must open with one of our keys; during a rotation it is re-sealed with our first.
 * 2. Against the processes running now: this process registers the fingerprints of its keys, and is
 *    let in only if its sealing (first) key is one every live process opens and it opens theirs.
 *    So a rotation must go in two roll-outs, `old,new` everywhere, then `new,old`; starting `new,old`
 *    beside a process that knows only `old` is refused. A crashed process's entry expires, so a
 *    conflict is retried for one entry lifetime before the process gives up. The same entry carries
 *    the process's data layout version (store/data-layout.ts): a live process of another version
 *    refuses this one too (a layout change is a stop-the-world upgrade).
 *
 * Waits for Redis while it is away. Throws KeyCheckError, whose message is the one line to print.
 */
export async function verifyDeploymentKeys(deps: KeyCheckDeps): Promise<KeyHolder> {
  // A key that opens nothing stored is wrong whatever else runs: refused at once.
  const stored = await judgeStoredKeyValue(deps);
  const holder = await registerKeyHolder(deps);
  if (stored === 'older_key') {
    await untilStoreAnswers(() => deps.redis.set(deps.keys.keyCheck, sealKeyCheck(deps.tokenKeys)), deps.logger);
    deps.logger.info('key check value re-sealed with the first TOKEN_ENCRYPTION_KEY (key rotation)');
  }
  return holder;
}

type Registration = [keyConflicts: number, layoutConflicts: number, otherLayout: string];

async function registerKeyHolder(deps: KeyCheckDeps): Promise<KeyHolder> {
  const { redis, keys, tokenKeys, logger } = deps;
  const id = randomUUID();
  const fingerprints = tokenKeys.map(keyFingerprint);
  const layout = String(deps.layoutVersion ?? DATA_LAYOUT_VERSION);
  const register = (): Promise<Registration> =>
    redis.registerKeyHolder(
      keys.keyHolders,
      keys.layoutHolders,
      Date.now(),
      Date.now() + KEY_HOLDER_TTL_MS,
      id,
      fingerprints[0] ?? '',
      fingerprints.join(','),
      layout,
    );
  const startedAt = Date.now();
  for (;;) {
    const registration = await untilStoreAnswers(register, logger);
    const refusal = refusalOf(registration, layout);
    if (!refusal) break;
    if (Date.now() - startedAt > KEY_HOLDER_TTL_MS + RETRY_MS) throw refusal;
    if (Date.now() - startedAt < RETRY_MS)
      logger.warn(
        { registration },
        'token keys differ from a running process (or its data layout); waiting in case it has stopped',
      );
    await sleep(RETRY_MS);
  }
  return keepRegistered(deps, id, register, layout);
}

/** The one line a refused registration prints, or null when it was accepted. */
function refusalOf([keyConflicts, layoutConflicts, otherLayout]: Registration, layout: string): KeyCheckError | null {
  if (layoutConflicts > 0)
    return new KeyCheckError(
      `data layout ${layout} of this release cannot run beside ${String(layoutConflicts)} running process(es) of data layout ${otherLayout}; upgrade stop-the-world: stop every process of the old release first (README "Upgrading")`,
    );
  if (keyConflicts > 0)
    return new KeyCheckError(
      `TOKEN_ENCRYPTION_KEY: ${String(keyConflicts)} running process(es) of this deployment cannot open tokens this process would seal, or seal tokens it cannot open; rotate in two roll-outs: "old,new" on every process, then "new,old"`,
    );
  return null;
}

/**
 * Renews the entry every RENEW_EVERY_MS. A renewal refused for a conflict (a process that got in
 * while this one's entry had lapsed) is not only logged: this process must not go on sealing tokens
 * the other cannot open, so `onConflict` stops it (it exits; restarted, the start-up check refuses it
 * with one line). Without `onConflict` (tests), the conflict is logged.
 */
function keepRegistered(
  deps: KeyCheckDeps,
  id: string,
  register: () => Promise<Registration>,
  layout: string,
): KeyHolder {
  const { redis, keys, logger } = deps;
  const timer = setInterval(() => {
    register().then(
      (registration) => {
        const refusal = refusalOf(registration, layout);
        if (!refusal) return;
        logger.error({ registration }, `conflict with a running process: ${refusal.message}`);
        if (!deps.onConflict) return;
        clearInterval(timer);
        deps.onConflict(refusal);
      },
      (err: unknown) => {
        logger.warn({ err }, 'could not renew the process registration');
      },
    );
  }, RENEW_EVERY_MS);
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      await redis.hdel(keys.keyHolders, id).catch(() => undefined);
      await redis.hdel(keys.layoutHolders, id).catch(() => undefined);
    },
  };
}

/** Writes the key check value if there is none (SET NX: the first process wins), then judges it. */
async function judgeStoredKeyValue({ redis, keys, tokenKeys, logger }: KeyCheckDeps): Promise<'current' | 'older_key'> {
  await untilStoreAnswers(() => redis.set(keys.keyCheck, sealKeyCheck(tokenKeys), 'NX'), logger);
  const stored = (await untilStoreAnswers(() => redis.get(keys.keyCheck), logger)) ?? '';
  const judged = judgeKeyCheck(stored, tokenKeys);
  if (judged === 'mismatch')
    throw new KeyCheckError(
      `TOKEN_ENCRYPTION_KEY: none of the configured keys opens this deployment's key check value in Redis (${keys.keyCheck}); every process of a deployment must share the key`,
    );
  return judged;
}

/** A process that cannot check its keys must not take work: retries while Redis is away. */
async function untilStoreAnswers<T>(step: () => Promise<T>, logger: Logger): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      if (!isStoreUnavailableError(err)) throw err;
      if (attempt % 10 === 1)
        logger.warn({ attempt }, 'Redis unavailable at start-up; waiting to check the token keys');
      await sleep(RETRY_MS);
    }
  }
}

function internalTtlMs(value: string | undefined): number | null {
  const ms = Number(value);
  return Number.isInteger(ms) && ms >= 3000 ? ms : null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
