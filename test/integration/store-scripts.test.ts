import {
  createRedis,
  createRedisCluster,
  createStoreClient,
  UpdateCode,
  type RedisClient,
} from '../../src/store/redis.js';
import { deleteKeysWithPrefix, testStoreTarget } from '../support/redis.js';
import { uniquePrefix } from '../support/system.js';

const SCRIPT_NAMES = [
  'claim',
  'settle',
  'schedule',
  'depth',
  'renew',
  'advance',
  'transition',
  'update',
  'idempotencyClaim',
  'idempotencyNote',
  'idempotencyComplete',
  'idempotencyRelease',
  'voidPayment',
  'listAdd',
  'listPage',
  'reservePending',
  'registerKeyHolder',
] as const;

/** A pipeline or MULTI with the update script (ioredis types them without the scripts). */
interface Batch {
  update(payment: string, allowedStatuses: string, setCount: number, ...fieldsValuesThenDropped: string[]): Batch;
  hget(key: string, field: string): Batch;
  hgetall(key: string): Batch;
  exec(): Promise<[Error | null, unknown][] | null>;
}

/**
 * The store's scripts sit once on ioredis' pipeline class, not copied onto each pipeline (each
 * auto-pipelined batch builds one: ~11 µs a batch with the copies), and still run on a fresh
 * connection (EVAL first, EVALSHA after) alone, auto-pipelined, in a pipeline and in a MULTI.
 */
describe('store scripts', () => {
  const prefix = uniquePrefix('scripts');
  const clients: RedisClient[] = [];
  const fresh = () => {
    const client = createStoreClient(testStoreTarget(), { autoPipelining: true });
    clients.push(client);
    return client;
  };

  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await deleteKeysWithPrefix(prefix);
  });

  test('a pipeline and a MULTI have every script without a copy of their own', () => {
    const redis = fresh();
    for (const batch of [redis.pipeline(), redis.multi()]) {
      const commands = batch as unknown as Record<string, unknown>;
      for (const name of SCRIPT_NAMES) {
        expect(Object.hasOwn(commands, name)).toBe(false);
        expect(typeof commands[name]).toBe('function');
        expect(commands[name]).toBe((redis as unknown as Record<string, unknown>)[name]);
      }
    }
  });

  test('a client with a keyPrefix is refused: the shared scripts would write its keys unprefixed', () => {
    const seed = [{ host: '127.0.0.1', port: 1 }];
    expect(() => createRedis('redis://127.0.0.1:1', { keyPrefix: 'p:', lazyConnect: true })).toThrow(/keyPrefix/);
    expect(() => createRedis('redis://127.0.0.1:1/?keyPrefix=p:', { lazyConnect: true })).toThrow(/keyPrefix/);
    expect(() => createRedisCluster(seed, { keyPrefix: 'p:', lazyConnect: true })).toThrow(/keyPrefix/);
    expect(() => createRedisCluster(seed, { lazyConnect: true }, { keyPrefix: 'p:' })).toThrow(/keyPrefix/);
  });

  test('on new connections, scripts run auto-pipelined, in a pipeline, in a MULTI and alone', async () => {
    const key = `${prefix}{s}:payment`;
    const gone = `${prefix}{s}:gone`;
    const setup = fresh();
    await setup.hset(key, 'status', 'pending');
    setup.disconnect();

    // The first script on each connection is sent as EVAL, later ones as EVALSHA.
    const redis = fresh();
    expect(
      await Promise.all([
        redis.update(key, '', 1, 'a', '1'),
        redis.update(gone, '', 1, 'a', '1'),
        redis.update(key, '', 1, 'b', '2'),
      ]),
    ).toEqual([UpdateCode.Written, UpdateCode.NoPayment, UpdateCode.Written]);

    const piped = fresh();
    expect(
      await (piped.pipeline() as unknown as Batch)
        .update(key, '', 1, 'c', '3')
        .hget(key, 'a')
        .update(gone, '', 1, 'c', '3')
        .exec(),
    ).toEqual([
      [null, UpdateCode.Written],
      [null, '1'],
      [null, UpdateCode.NoPayment],
    ]);

    const atomic = fresh();
    expect(await (atomic.multi() as unknown as Batch).update(key, '', 1, 'd', '4', 'a').hgetall(key).exec()).toEqual([
      [null, UpdateCode.Written],
      [null, { status: 'pending', b: '2', c: '3', d: '4' }],
    ]);
    expect(await atomic.update(key, '', 0, 'b')).toBe(UpdateCode.Written);
    expect(await atomic.hgetall(key)).toEqual({ status: 'pending', c: '3', d: '4' });
    expect(await atomic.exists(gone)).toBe(0);
  });
});
