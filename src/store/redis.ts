import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { followAskPastRedirectionBudget } from './cluster-ask-budget.js';

const LUA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'lua');

/** What transition-6.lua answers (see its header). */
export enum TransitionCode {
  Done = 1,
  /** The payment does not exist (or exists, when it had to be new). */
  NotFound = -1,
  /** Its status is not one of the allowed ones, or a fenced field changed (TransitionRequest.whileUnchanged). */
  WrongStatus = -2,
}

/** What update-1.lua answers (see its header). */
export enum UpdateCode {
  Written = 1,
  /** There is no payment hash: nothing was written. */
  NoPayment = 0,
  /** Its status is not one of the allowed ones: nothing was written. */
  WrongStatus = -2,
}

/** One item claim-4.lua leased: its member, when it was due (ms), and its payment's prefetched fields (or null). */
export interface ClaimReplyItem {
  member: string;
  dueAt: number;
  fields: (string | null)[] | null;
  /** It came back from an expired lease: its earlier worker may still be running it. */
  takenOver: boolean;
}

/** claim-4.lua's answer, parsed: the items it leased and when the next unclaimed one is due (ms), or null. */
export interface ClaimReply {
  items: ClaimReplyItem[];
  nextDueAt: number | null;
}

/** Parses claim-4.lua's flat reply: member, due score, fields or 0, takeover 1/0, …, then the next due score or ''. */
export function parseClaimReply(raw: readonly (string | number | (string | null)[])[]): ClaimReply {
  const items: ClaimReplyItem[] = [];
  for (let i = 0; i + 3 < raw.length; i += 4) {
    const fields = raw[i + 2];
    items.push({
      member: String(raw[i]),
      dueAt: Number(raw[i + 1]),
      fields: Array.isArray(fields) ? fields : null,
      takenOver: raw[i + 3] === 1,
    });
  }
  const next = raw[raw.length - 1];
  return { items, nextDueAt: next ? Number(next) : null };
}

/** transition-6.lua's keys and arguments, in its header's order. */
export type TransitionArgs = [
  payment: string,
  dueBucket: string,
  leases: string,
  pinged: string,
  dueDir: string,
  legacyDue: string,
  allowedFrom: string,
  set: string,
  drop: string,
  eventEntry: string,
  deliveries: string,
  now: number,
  scheduleMember: string,
  scheduleAt: number,
  unschedule: string,
  retentionSeconds: number,
  terminal: '0' | '1',
  changesChannel: string,
  paymentId: string,
  bucket: number,
  guardFields: string,
  guardValue: string,
];

/** What idempotency-claim-1.lua answers: run, wait, refuse, replay the stored response, or settle a noted claim. */
export type IdempotencyClaimReply =
  | ['new']
  | ['in_flight']
  | ['mismatch']
  | [state: 'replay', status: string, sealedBody: string | null, location: string]
  | [state: 'unsettled', paymentId: string, sealedSecret: string];

/** The Lua scripts, as commands on every store client and its pipelines (defineScripts: EVAL once per connection, then EVALSHA). */
export interface ScriptCommands {
  /**
   * Claims due work from a shard's due buckets (and legacy due set); members of kind `kind` (e.g.
   * `poll:`) come with `fields` of the payment hash `paymentPrefix + id`; expired leases of kind
   * `pacedKind` come back no earlier than their lease start + the hash's `paceField`; work from an
   * expired lease is noted in `takenOver` until claimed again, or for `takeoverKeptMs` (claim-4.lua).
   * Reply: member, due score, fields or 0, takeover 1/0, …, next due score or ''.
   */
  claim(
    dueDir: string,
    leases: string,
    legacyDue: string,
    takenOver: string,
    now: number,
    leaseUntil: number,
    limit: number,
    kind: string,
    paymentPrefix: string,
    bucketPrefix: string,
    pacedKind: string,
    leaseMs: number,
    paceField: string,
    paceDefault: number,
    buckets: number,
    takeoverKeptMs: number,
    ...fields: string[]
  ): Promise<(string | number | (string | null)[])[]>;
  /**
   * Completes (at = '') or reschedules leased work, per item only while its lease is still the
   * caller's: quadruples of member, lease expiry held, at, due bucket. Per item 1 when it was, 0 when not.
   */
  settle(
    dueDir: string,
    leases: string,
    pinged: string,
    now: number,
    bucketPrefix: string,
    ...memberLeaseAtBucket: (string | number)[]
  ): Promise<number[]>;
  /**
   * Puts work into its due bucket at `at` (earlier or later), out of the legacy set, and its lease
   * with dropLease '1': 1. With dropLease '0' leased work is left alone: 0.
   */
  schedule(
    dueBucket: string,
    dueDir: string,
    leases: string,
    legacyDue: string,
    at: number,
    member: string,
    bucket: number,
    dropLease: '0' | '1',
  ): Promise<number>;
  /** Work waiting and leased in one shard: [due, leased]. */
  depth(dueDir: string, leases: string, legacyDue: string, bucketPrefix: string): Promise<[number, number]>;
  /** Extends leases still held with the given expiries to `leaseUntil`; per pair 1 when renewed, 0 when lost. */
  renew(leases: string, leaseUntil: number, ...memberAndHeldUntil: (string | number)[]): Promise<number[]>;
  /**
   * Ping: moves waiting work earlier (and wakes its shard's workers on `wakeChannel`), or marks leased
   * work to be due at once when it is settled; 1 when either.
   */
  advance(
    dueBucket: string,
    dueDir: string,
    leases: string,
    pinged: string,
    legacyDue: string,
    at: number,
    member: string,
    bucket: number,
    wakeChannel: string,
  ): Promise<number>;
  transition(...args: TransitionArgs): Promise<TransitionCode>;
  /**
   * Sets `setCount` field/value pairs and deletes the fields after them, only while the payment hash
   * exists (else 0) and, unless `allowedStatuses` is '', its status is one of them (else -2): 1.
   */
  update(
    payment: string,
    allowedStatuses: string,
    setCount: number,
    ...fieldsValuesThenDropped: string[]
  ): Promise<UpdateCode>;
  idempotencyClaim(
    key: string,
    fingerprint: string,
    inFlightSeconds: number,
    owner: string,
    now: number,
  ): Promise<IdempotencyClaimReply>;
  /** Notes the payment of a claim still in flight and the owner's, and keeps the claim `keepSeconds`: 1, else 0. */
  idempotencyNote(
    key: string,
    owner: string,
    paymentId: string,
    sealedSecret: string,
    keepSeconds: number,
  ): Promise<0 | 1>;
  /** Stores the answer of a claim still in flight and the owner's: 1, else 0 (nothing changed). */
  idempotencyComplete(
    key: string,
    owner: string,
    status: number,
    sealedBody: string,
    location: string,
    keepSeconds: number,
  ): Promise<0 | 1>;
  /**
   * Deletes a claim still in flight and the owner's: 1, else 0 (nothing changed). In mode 'unnoted' a
   * noted claim is not deleted but made takeable at once (idempotency-release-1.lua).
   */
  idempotencyRelease(key: string, owner: string, mode?: 'unnoted'): Promise<0 | 1>;
  /** Whether a payment whose creation is in doubt is void: 1 (voided now or before), 0 (it exists). */
  voidPayment(payment: string, voidStatus: string, keepSeconds: number): Promise<0 | 1>;
  /** Enters (created_at, id) pairs into the payment list index and trims it; the number of leaves. */
  listAdd(
    directory: string,
    counter: string,
    leafPrefix: string,
    cutoff: number,
    splitAt: number,
    ...createdAtAndId: (string | number)[]
  ): Promise<number>;
  /** One page of the payment list index: ids, or -1 when the cursor is not listed. */
  listPage(
    directory: string,
    leafPrefix: string,
    direction: 'older' | 'newer',
    cursor: string,
    cursorCreatedAt: string,
    createdGte: number | '-inf',
    createdLt: number | '+inf',
    count: number,
  ): Promise<string[] | -1>;
  /**
   * Registers or renews a process (token key fingerprints, data layout version) if compatible with
   * every live process: [0, 0, ''], else [key conflicts, layout conflicts, a differing layout].
   */
  registerKeyHolder(
    holders: string,
    layouts: string,
    now: number,
    expiresAt: number,
    holderId: string,
    sealingFingerprint: string,
    openFingerprints: string,
    layoutVersion: string,
  ): Promise<[keyConflicts: number, layoutConflicts: number, otherLayout: string]>;
  /** Holds a place for one more pending checkout of a customer: [1], or [0, ms until one frees]. */
  reservePending(
    pending: string,
    now: number,
    max: number,
    member: string,
    until: number,
    ttlMs: number,
  ): Promise<number[]>;
}

/**
 * One Redis or a Redis Cluster. A Cluster offers the same commands, scripts, MULTI (keys of one slot),
 * pub/sub and `duplicate()`; the service uses nothing else, so both are typed as the single client.
 */
export type RedisClient = Redis & ScriptCommands;

/** Where the store lives: REDIS_URL, or the seed nodes of REDIS_CLUSTER_NODES. */
export interface StoreTarget {
  redisUrl: string;
  redisClusterNodes: { host: string; port: number }[] | null;
  /** REDIS_COMMAND_TIMEOUT_MS (default DEFAULT_COMMAND_TIMEOUT_MS). */
  redisCommandTimeoutMs?: number;
}

/** REDIS_COMMAND_TIMEOUT_MS's default: far above any command's time (WAIT included), far below a client's patience. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 2000;

/**
 * Against a node that accepts TCP but never answers (a partitioned primary, a hung host), ioredis
 * would wait for ever: every API request and every worker step would hang. A command unanswered for
 * `commandTimeout` fails ("Command timed out": 503 store_unavailable at the API, a back-off in the
 * worker); TCP keep-alive notices a peer that vanished without a reset, and a connection attempt
 * gives up after `connectTimeout` and is retried.
 */
function timeouts(commandTimeoutMs: number): RedisOptions {
  return { commandTimeout: commandTimeoutMs, connectTimeout: Math.max(commandTimeoutMs, 5000), keepAlive: 5000 };
}

/**
 * What a subscriber copy (one Redis or a cluster's nodes) sets over the store's options: the queue
 * on and no command timeout (ioredis subscribes again by itself after a reconnect, and such a
 * subscribe refused or timed out must not fail unhandled), and unanswered commands re-sent.
 */
const SUBSCRIBER_COPY: RedisOptions = {
  enableOfflineQueue: true,
  commandTimeout: undefined,
  autoResendUnfulfilledCommands: true,
};

/** Script files are named `<command>-<numberOfKeys>.lua`, as bullmq names them. */
const SCRIPTS: Record<keyof ScriptCommands, string> = {
  claim: 'claim-4.lua',
  settle: 'settle-3.lua',
  schedule: 'schedule-4.lua',
  depth: 'depth-3.lua',
  renew: 'renew-1.lua',
  advance: 'advance-5.lua',
  transition: 'transition-6.lua',
  update: 'update-1.lua',
  idempotencyClaim: 'idempotency-claim-1.lua',
  idempotencyNote: 'idempotency-note-1.lua',
  idempotencyComplete: 'idempotency-complete-1.lua',
  idempotencyRelease: 'idempotency-release-1.lua',
  voidPayment: 'void-payment-1.lua',
  listAdd: 'list-add-2.lua',
  listPage: 'list-page-1.lua',
  reservePending: 'reserve-pending-1.lua',
  registerKeyHolder: 'register-key-holder-2.lua',
};

/**
 * Once connected, commands fail at once while Redis is away instead of queueing: the API answers 503
 * `store_unavailable` straight away and the worker backs off, rather than both hanging. Commands
 * in flight when the connection drops are retried `maxRetriesPerRequest` times.
 */
function failFastOnceReady(redis: Redis | Cluster): void {
  redis.once('ready', () => {
    redis.options.enableOfflineQueue = false;
  });
}

/** Marks a script function on ioredis' pipeline class (global: a second load of this module sees it). */
const SCRIPT_MARK = Symbol.for('ciba-checkout.script');

function isScriptFunction(value: unknown): boolean {
  return typeof value === 'function' && SCRIPT_MARK in value;
}

/**
 * The scripts' functions, made once by ioredis' `defineCommand` (on a client that never connects):
 * EVAL the first time on a connection, EVALSHA after, EVAL again on NOSCRIPT; inside a pipeline or
 * MULTI too. They depend on no client, so every client and pipeline shares them; but they ignore a
 * `keyPrefix` (defineCommand would prefix the keys per client), so createRedis and createRedisCluster
 * refuse one.
 */
const SCRIPT_FUNCTIONS: [name: string, run: unknown][] = (() => {
  const template = new Redis({ lazyConnect: true });
  const functions: [string, unknown][] = [];
  for (const [name, file] of Object.entries(SCRIPTS)) {
    const numberOfKeys = Number(/-(\d+)\.lua$/.exec(file)?.[1]);
    template.defineCommand(name, { numberOfKeys, lua: readFileSync(join(LUA_DIR, file), 'utf8') });
    functions.push([name, (template as unknown as Record<string, unknown>)[name]]);
  }
  // Once on the pipeline class (MULTI is one too): see defineScripts. No name may shadow a command
  // (on its parent class) nor the pipeline's own methods (exec, multi, addBatch…); what a second
  // load of this module finds there under a script's name is its own mark, replaced.
  const pipelineClass = Object.getPrototypeOf(template.pipeline()) as Record<string, unknown>;
  const commands = Object.getPrototypeOf(pipelineClass) as object;
  for (const [name, run] of functions) {
    const own = Object.hasOwn(pipelineClass, name) && !isScriptFunction(pipelineClass[name]);
    if (own || name in commands) throw new Error(`script name ${name} is taken by an ioredis command`);
    Object.defineProperty(run, SCRIPT_MARK, { value: true });
    Object.defineProperty(pipelineClass, name, { value: run, writable: true, configurable: true });
  }
  return functions;
})();

/**
 * Puts the scripts on a client. Not with its `defineCommand`: ioredis' Pipeline constructor copies
 * every command so defined (two functions each) onto each pipeline it builds, and auto-pipelining
 * builds one per batch of every client: ~11 µs a batch with 13 scripts, against under 1 µs without
 * (bench/pipeline-cost.mjs). The pipeline class carries the same functions once instead.
 */
function defineScripts(redis: Redis | Cluster): void {
  const commands = redis as unknown as Record<string, unknown>;
  for (const [name, run] of SCRIPT_FUNCTIONS) commands[name] = run;
}

const nodesWithScripts = new WeakSet<Redis>();

/**
 * The cluster's own connection to the node an `ASK <slot> <host:port>` answer names (a slot being
 * migrated, the key already on the importing node), with the scripts defined on it; null when the
 * client is not a cluster or does not know that node. For a pipeline ioredis does not follow such a
 * redirect itself when another command of it (WAIT, which has no key) succeeded.
 */
export function askedNode(redis: RedisClient, askError: string): RedisClient | null {
  const address = /^ASK \d+ (\S+)/.exec(askError)?.[1];
  const cluster: unknown = redis;
  if (!address || !(cluster instanceof Cluster)) return null;
  const node = cluster.nodes('master').find((n) => `${n.options.host}:${String(n.options.port)}` === address);
  if (!node) return null;
  if (!nodesWithScripts.has(node)) {
    defineScripts(node);
    nodesWithScripts.add(node);
  }
  return node as RedisClient;
}

/** The service's store client: a Redis Cluster client when seed nodes are given, else one Redis. */
export function createStoreClient(target: StoreTarget, options: { autoPipelining?: boolean } = {}): RedisClient {
  const enableAutoPipelining = options.autoPipelining ?? false;
  // "Timed out" does not mean "not run": the command may have reached Redis. ioredis would also send
  // it again after a reconnect, so a script the caller already gave up on (503 store_unavailable, a
  // worker back-off) could run later, or twice. On one Redis, unanswered commands fail with the
  // connection instead. Subscriber copies set it back (createRedis, createRedisCluster): their
  // SUBSCRIBE must get through.
  // A cluster client sends such a command again all the same (ioredis 5.11): a node's connection
  // has no retryStrategy (cluster/ConnectionPool.js:60), so when it closes every command written to it
  // and unanswered is rejected "Connection is closed." (redis/event_handler.js:212-214), one that
  // already timed out too; the cluster's reject (cluster/index.js:388-415) takes that as a failover and
  // sends it to the slot's owner 100 ms later (index.js:594-600; a pipeline: Pipeline.js:80-162), as
  // test/integration/cluster-resend.test.ts shows. So every store write is safe to run twice
  // (store-replay.test.ts).
  const perNode = {
    ...timeouts(target.redisCommandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS),
    autoResendUnfulfilledCommands: false,
  };
  if (!target.redisClusterNodes) return createRedis(target.redisUrl, { enableAutoPipelining, ...perNode });
  return createRedisCluster(target.redisClusterNodes, { enableAutoPipelining }, perNode);
}

/** How often, and how far apart, the cluster client sends a command again (createRedisCluster). */
const CLUSTER_RETRIES = { maxRedirections: 6, retryDelayMs: 100 };

/**
 * Redis Cluster (issue 12.1, 12.2). ioredis follows MOVED and ASK during a slot migration and retries
 * TRYAGAIN (keys of a script half migrated) and CLUSTERDOWN; a command whose primary died is retried
 * every `retryDelayOnFailover`, refreshing the slot map in between. Each of these costs one of
 * `maxRedirections`, so a command for a slot without a primary fails after about
 * `maxRedirections × retryDelayOnFailover` (0.6 s), not when the replica has taken over (about
 * cluster-node-timeout plus an election, seconds): the API answers 503 `store_unavailable` with
 * Retry-After within that bound instead of holding requests, and the worker backs off. Six
 * redirections are more than a migration needs (one MOVED, or one ASK per command).
 */
export function createRedisCluster(
  nodes: { host: string; port: number }[],
  options: ClusterOptions = {},
  nodeOptions: RedisOptions = timeouts(DEFAULT_COMMAND_TIMEOUT_MS),
): RedisClient {
  const clusterOptions: ClusterOptions = {
    enableOfflineQueue: true,
    scaleReads: 'master',
    maxRedirections: CLUSTER_RETRIES.maxRedirections,
    retryDelayOnFailover: CLUSTER_RETRIES.retryDelayMs,
    retryDelayOnClusterDown: CLUSTER_RETRIES.retryDelayMs,
    retryDelayOnTryAgain: CLUSTER_RETRIES.retryDelayMs,
    slotsRefreshTimeout: 2000,
    // A MOVED inside a pipeline (the worker's claim over every shard) is handed back, not followed, so
    // ioredis would keep a moved slot's old owner for good: the slot map is also read every 2 s.
    slotsRefreshInterval: 2000,
    clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
    redisOptions: { maxRetriesPerRequest: 2, ...nodeOptions },
    ...options,
  };
  refuseKeyPrefix(clusterOptions.keyPrefix, clusterOptions.redisOptions?.keyPrefix);
  const cluster = new Cluster(nodes, clusterOptions);
  followAskPastRedirectionBudget(cluster);
  defineScripts(cluster);
  failFastOnceReady(cluster);
  // Subscriber copies are set as the copies of one Redis (createRedis): the queue stays on and no
  // command timeout, so an SSUBSCRIBE sent while the copy or the slot's node reconnects (a restart,
  // a failover) waits for the connection instead of failing at once or after the store's timeout;
  // ioredis' sharded subscribers subscribe again by themselves once the node is back.
  cluster.duplicate = (startupNodes?: { host: string; port: number }[], override?: ClusterOptions) => {
    const copy = new Cluster(startupNodes?.length ? startupNodes : nodes, {
      ...clusterOptions,
      enableOfflineQueue: true,
      redisOptions: { ...clusterOptions.redisOptions, ...SUBSCRIBER_COPY },
      ...override,
    });
    followAskPastRedirectionBudget(copy);
    copy.on('error', () => undefined);
    return copy;
  };
  cluster.on('error', () => undefined);
  return cluster as unknown as RedisClient;
}

/**
 * A connection for sharded pub/sub (SSUBSCRIBE, issue 12.5). On a cluster, ioredis' sharded
 * subscribers: one connection per primary owning a subscribed slot, re-established on slot changes.
 */
export function createShardedSubscriber(redis: RedisClient): RedisClient {
  const client = redis as unknown as Cluster;
  if (client instanceof Cluster)
    return client.duplicate(undefined, { shardedSubscribers: true }) as unknown as RedisClient;
  // No ready check (INFO), as ioredis' own sharded subscribers: SSUBSCRIBE may be sent while the
  // connection is still in its handshake, and an INFO after it would be refused in subscriber mode.
  return redis.duplicate({ enableReadyCheck: false }) as RedisClient;
}

/** The shared script functions send their keys as given: a prefix would apply to every other command only. */
function refuseKeyPrefix(...prefixes: (string | undefined)[]): void {
  if (prefixes.some((prefix) => prefix)) throw new Error('keyPrefix is not supported: prefix keys with createKeys');
}

export function createRedis(url: string, options: RedisOptions = {}): RedisClient {
  // ioredis takes options from the URL's query too.
  refuseKeyPrefix(options.keyPrefix, URL.canParse(url) ? (new URL(url).searchParams.get('keyPrefix') ?? '') : '');
  const redis = new Redis(url, {
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    ...timeouts(DEFAULT_COMMAND_TIMEOUT_MS),
    ...options,
  });
  defineScripts(redis);
  failFastOnceReady(redis);
  // Copies (subscribers) start with the queue on, so a SUBSCRIBE sent while connecting waits for the connection.
  const duplicate = redis.duplicate.bind(redis);
  redis.duplicate = (override?: Partial<RedisOptions>) => {
    // Not failing fast once ready: ioredis resubscribes by itself after a reconnect, unhandled, and a
    // resubscribe refused because the stream broke again at once would kill the process.
    // Nor a command timeout: a resubscribe waiting for the connection must not time out unhandled.
    return duplicate({ ...SUBSCRIBER_COPY, ...override });
  };
  // Connection errors are reported by the commands that fail; without a listener ioredis prints each retry.
  redis.on('error', () => undefined);
  return redis as RedisClient;
}

/**
 * ioredis' ways of saying "Redis is not there right now" (no connection, retries used up, loading,
 * failover). A MOVED or ASK that reaches the caller came from a pipeline or MULTI that ioredis does
 * not redirect by itself while a slot moves or its primary is being replaced (the command did not
 * run on that node): the same answer, try again shortly.
 */
export function isStoreUnavailableError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  if (/enableOfflineQueue|Connection is closed|Redis connection is not ready|Command timed out/.test(err.message))
    return true;
  if (/Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes/.test(err.message))
    return true;
  return (
    err.name === 'ReplyError' && /^(LOADING|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|MOVED|ASK)\b/.test(err.message)
  );
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
