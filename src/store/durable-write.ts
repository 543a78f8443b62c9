import { storeUnavailable, type AppError } from '../errors.js';
import { askedNode, type RedisClient, type TransitionArgs } from './redis.js';

/**
 * How a write a failover must not lose is kept: followed by `WAIT <replicas> <timeoutMs>` on the
 * write's node (payment-store.ts explains which writes and why; idempotency-store.ts the claim's note).
 */
export interface Durability {
  /** Replicas that must acknowledge a money write (0: no WAIT, e.g. one Redis without replicas). */
  replicas: number;
  timeoutMs: number;
}

/** No replica asked for: writes are sent plainly (one Redis, or no REDIS_WAIT_REPLICAS). */
export const NO_WAIT: Durability = { replicas: 0, timeoutMs: 0 };

/** The store's writes that can be WAITed for (the script commands, as ioredis queues them in a pipeline). */
export interface DurablePipeline {
  transition(...args: TransitionArgs): DurablePipeline;
  update(
    payment: string,
    allowedStatuses: string,
    setCount: number,
    ...fieldsValuesThenDropped: string[]
  ): DurablePipeline;
  idempotencyNote(...args: Parameters<RedisClient['idempotencyNote']>): DurablePipeline;
  voidPayment(...args: Parameters<RedisClient['voidPayment']>): DurablePipeline;
  call(command: string, ...args: (string | number)[]): DurablePipeline;
  exec(): Promise<[Error | null, unknown][] | null>;
}

/** Redis Cluster's answers for a command that did not run because its slot is elsewhere or moving. */
const NOT_RUN_HERE = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /;
const REDIRECT_ATTEMPTS = 6;

/**
 * Runs the write queued by `write` followed by WAIT, on the write's node in one round trip: the
 * write's reply and how many replicas acknowledged. ioredis retries a cluster pipeline after MOVED or
 * ASK only when every command failed alike; here WAIT, which has no key, succeeds beside the
 * redirected write, so the redirect is followed here (a redirected write did not run, so sending it
 * again is safe):
 * - MOVED (and TRYAGAIN, CLUSTERDOWN): a plain read of `key` teaches ioredis where the slot lives
 *   now, and the pair is sent again;
 * - ASK (the slot is being migrated and the key is already on the importing node, which only serves
 *   it after ASKING): the pair goes to that node as ASKING, write, WAIT, on the cluster's own
 *   connection to it, so WAIT counts the write. The slot map does not change during a migration, so
 *   before this every try met ASK again until the migration ended.
 */
export async function execAndWait(
  redis: RedisClient,
  key: string,
  write: (pipeline: DurablePipeline) => DurablePipeline,
  durability: Durability,
): Promise<[unknown, number]> {
  let pipeline = () => redis.pipeline() as unknown as DurablePipeline;
  for (let attempt = 1; ; attempt++) {
    const results = await write(pipeline()).call('WAIT', durability.replicas, durability.timeoutMs).exec();
    // The write is the command before WAIT (after ASKING when asked).
    const [err, value] = results?.at(-2) ?? [new Error('no reply'), null];
    if (err && attempt < REDIRECT_ATTEMPTS && NOT_RUN_HERE.test(err.message)) {
      const asked = err.message.startsWith('ASK ') ? askedNode(redis, err.message) : null;
      pipeline = asked
        ? () => (asked.pipeline() as unknown as DurablePipeline).call('ASKING')
        : () => redis.pipeline() as unknown as DurablePipeline;
      if (!asked) {
        await redis.exists(key);
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
      continue;
    }
    if (err) throw err;
    const [waitErr, acknowledged] = results?.at(-1) ?? [new Error('WAIT: no reply'), null];
    if (waitErr) throw waitErr;
    return [value, Number(acknowledged)];
  }
}

/**
 * The write, WAITed for when `durability` asks for replicas (execAndWait), else sent plainly: its
 * reply, and whether it is kept (enough replicas acknowledged it, or none were asked for).
 */
export async function writeDurably(
  redis: RedisClient,
  key: string,
  write: { plain: () => Promise<unknown>; queued: (pipeline: DurablePipeline) => DurablePipeline },
  durability: Durability,
): Promise<{ reply: unknown; kept: boolean }> {
  if (durability.replicas === 0) return { reply: await write.plain(), kept: true };
  const [reply, acknowledged] = await execAndWait(redis, key, write.queued, durability);
  return { reply, kept: acknowledged >= durability.replicas };
}

/**
 * A write the primary took but fewer than `durability.replicas` acknowledged in time: a failover now
 * could lose it, so the caller must not act as if it were kept (503, the client retries).
 */
export function notReplicated(what: string): AppError {
  return storeUnavailable(new Error(`${what}: too few replicas acknowledged it`));
}
