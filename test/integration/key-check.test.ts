import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { keyFingerprint } from '../../src/crypto/key-check.js';
import { open } from '../../src/crypto/sealing.js';
import { DATA_LAYOUT_VERSION } from '../../src/store/data-layout.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import {
  assertBuilt,
  killAll,
  runServiceToExit,
  serviceEnv,
  spawnService,
  type ServiceProcess,
} from '../support/processes.js';
import { waitFor } from '../support/api.js';
import { deleteKeysWithPrefix } from '../support/redis.js';
import { testCertificates, uniquePrefix } from '../support/system.js';

/**
 * Deployments that cannot share secrets refuse to start (issue 11.4): the first process seals the
 * deployment's key check value in Redis; a process whose TOKEN_ENCRYPTION_KEY cannot open it stops
 * at start-up with one line naming the variable. Real processes (`node dist/main.js`), real Redis.
 */

const prefix = uniquePrefix('keycheck');
const certs = testCertificates();
const procs = new Set<ServiceProcess>();
const redis = new Redis('redis://127.0.0.1:6379');
const newKey = () => randomBytes(32).toString('base64');

/**
 * Registrations live this long here rather than 10 s: every refused start and the crashed-process
 * case wait one lifetime (src/store/key-check-store.ts reads the variable).
 */
const KEY_HOLDER_TTL_MS = 3000;

/**
 * No bank is contacted before the key check; a closed port keeps discovery failing quietly.
 * `deployment`: another prefix (under this suite's), for a case that runs beside another.
 */
const env = (key: string, extra: Record<string, string> = {}, deployment = prefix) =>
  serviceEnv({
    bank: { issuer: 'https://localhost:9', apiUrl: 'https://localhost:9/api' },
    certs,
    prefix: deployment,
    extra: { TOKEN_ENCRYPTION_KEY: key, CIBA_INTERNAL_KEY_HOLDER_TTL_MS: String(KEY_HOLDER_TTL_MS), ...extra },
  });

const runToExit = (key: string, deployment = prefix) => runServiceToExit('worker', env(key, {}, deployment));

/** No process of an earlier test left, no key of it in Redis. */
async function startAfresh(): Promise<void> {
  await killAll(procs);
  procs.clear();
  await deleteKeysWithPrefix(prefix);
}

beforeAll(() => {
  assertBuilt();
});
afterAll(async () => {
  await killAll(procs);
  await deleteKeysWithPrefix(prefix);
  redis.disconnect();
});

const keyCheckText = (sealed: string | null, key: string) =>
  open(sealed!, [Buffer.from(key, 'base64')], 'deployment/key-check');

test('when a process starts with another TOKEN_ENCRYPTION_KEY than the deployment, then it exits at start with one line naming the variable', async () => {
  const first = newKey();
  const a = await spawnService('a', 'worker', env(first));
  procs.add(a);
  const sealed = await redis.get(`${prefix}key-check`);
  expect(keyCheckText(sealed, first)).toBe('ciba-checkout key check v1');

  const stranger = await runToExit(newKey());
  expect(stranger.code).toBe(1);
  expect(stranger.lines).toHaveLength(1);
  expect(stranger.lines[0]).toMatch(
    /^ciba-checkout: failed to start: TOKEN_ENCRYPTION_KEY: none of the configured keys/,
  );
  expect(await redis.get(`${prefix}key-check`)).toBe(sealed); // the stranger changed nothing
  await killAll(procs);
  procs.clear();
}, 60_000);

test('when a key is rotated, then "new,old" is refused beside a process that knows only the old key, and accepted after "old,new" has rolled out; a crashed process blocks only until its entry expires', async () => {
  await deleteKeysWithPrefix(prefix);
  const old = newKey();
  const rotated = newKey();
  const a = await spawnService('a', 'worker', env(old));
  procs.add(a);
  const sealed = await redis.get(`${prefix}key-check`);

  // One roll-out too early: the new process would seal tokens `a` cannot open. Refused, nothing re-sealed.
  const early = await runToExit(`${rotated},${old}`);
  expect(early.code).toBe(1);
  expect(early.lines.at(-1)).toMatch(
    /^ciba-checkout: failed to start: TOKEN_ENCRYPTION_KEY: 1 running process\(es\) of this deployment cannot open/,
  );
  expect(await redis.get(`${prefix}key-check`)).toBe(sealed);

  // First roll-out: every process learns the new key (still sealing with the old one).
  a.child.kill('SIGTERM');
  await a.exited;
  const b = await spawnService('b', 'worker', env(`${old},${rotated}`));
  procs.add(b);
  expect(await redis.get(`${prefix}key-check`)).toBe(sealed);
  // Second roll-out: the new key seals; the check value is re-sealed with it.
  const c = await spawnService('c', 'worker', env(`${rotated},${old}`));
  procs.add(c);
  const resealed = await redis.get(`${prefix}key-check`);
  expect(keyCheckText(resealed, rotated)).toBe('ciba-checkout key check v1');
  // ...so a process left with only the retired key no longer starts, at once.
  const retired = await runToExit(old);
  expect(retired.code).toBe(1);
  expect(retired.lines[0]).toMatch(/none of the configured keys/);

  // `b` (old,rotated) crashes: its entry stays until it expires, then a process without the old key starts.
  b.child.kill('SIGKILL');
  await b.exited;
  const crashedAt = Date.now();
  const d = await spawnService('d', 'worker', env(rotated));
  procs.add(d);
  expect(Date.now() - crashedAt).toBeGreaterThan(KEY_HOLDER_TTL_MS / 2);
  expect(d.lines.some((l) => l.includes('token keys differ from a running process'))).toBe(true);
  expect(await redis.hlen(`${prefix}key-holders`)).toBe(3); // c, d and the layout guard
}, 150_000);

test('when a process cut off from Redis longer than its registration lives comes back beside a process with keys it conflicts with, then it stops and exits non-zero with one line; restarted, it is refused', async () => {
  await startAfresh();
  const old = newKey();
  const rotated = newKey();
  const proxy = await startFaultProxy();
  proxy.setUpstream(6379);
  try {
    // A worker: it must also survive the resets (ioredis' own resubscribe of its sharded subscriber,
    // unhandled, once killed the process when refused or timed out).
    const a = await spawnService('a', 'worker', env(old, { REDIS_URL: `redis://127.0.0.1:${proxy.port}` }));
    procs.add(a);
    // `a` is cut off from Redis (every connection reset) and its entry lapses (deleted here rather than waited out).
    proxy.setMode('reset');
    // Once a renewal has failed, none sent before the reset can still land after the delete below.
    await waitFor(
      () => a.lines.some((l) => l.includes('could not renew the process registration')),
      30_000,
      'a failed renewal',
    );
    await redis.del(`${prefix}key-holders`, `${prefix}{${prefix}key-holders}:layouts`);
    // Meanwhile a process sealing with a key `a` cannot open gets in: nothing live objects.
    const b = await spawnService('b', 'worker', env(`${rotated},${old}`));
    procs.add(b);

    proxy.setMode('pass');
    const exit = await a.exited; // before: `a` logged the conflict and went on sealing with its old key
    expect(exit.code).toBe(1);
    // Its output may still be in the pipe when it exits.
    await waitFor(
      () => a.lines.some((l) => l.startsWith('ciba-checkout: stopping:')),
      5000,
      () => `the stopping line in: ${a.lines.slice(-30).join('\n')}`,
    );
    expect(a.lines.filter((l) => l.startsWith('ciba-checkout: stopping:'))).toEqual([
      expect.stringMatching(
        /^ciba-checkout: stopping: TOKEN_ENCRYPTION_KEY: 1 running process\(es\) of this deployment/,
      ),
    ]);
    expect(b.alive()).toBe(true);
    // The orchestrator restarts `a`: refused at start-up, with one line.
    const restarted = await runToExit(old);
    expect(restarted.code).toBe(1);
    expect(restarted.lines.at(-1)).toMatch(
      /^ciba-checkout: failed to start: TOKEN_ENCRYPTION_KEY: none of the configured keys/,
    );
  } finally {
    await killAll(procs);
    procs.clear();
    await proxy.close();
  }
}, 90_000);

test('when a live process runs another data layout, then a new process refuses to start with one line; a process from before layouts were recorded counts as layout 1 (before the due buckets)', async () => {
  await startAfresh();
  const key = newKey();
  const fp = keyFingerprint(Buffer.from(key, 'base64'));
  const live = `${Date.now() + 120_000}|${fp}|${fp}`;
  // Two deployments, each refusal waiting out one registration lifetime, side by side.
  const nextLayout = `${prefix}next:`;
  const layoutOne = `${prefix}one:`;
  // A live process of the next layout, as its registration reads (same key, so only the layout differs).
  await redis.hset(`${nextLayout}key-holders`, 'next-release', live);
  await redis.hset(`${nextLayout}{${nextLayout}key-holders}:layouts`, 'next-release', String(DATA_LAYOUT_VERSION + 1));
  // A process of the release before layouts were recorded (an entry without one: the single due set
  // per shard, before the due buckets) has layout 1: refused beside it too.
  await redis.hset(`${layoutOne}key-holders`, 'next-release', live);
  const [refused, beside] = await Promise.all([runToExit(key, nextLayout), runToExit(key, layoutOne)]);
  expect(refused.code).toBe(1);
  expect(refused.lines.at(-1)).toBe(
    `ciba-checkout: failed to start: data layout ${DATA_LAYOUT_VERSION} of this release cannot run beside 1 running process(es) of data layout ${DATA_LAYOUT_VERSION + 1}; upgrade stop-the-world: stop every process of the old release first (README "Upgrading")`,
  );
  expect(await redis.hlen(`${nextLayout}key-holders`)).toBe(1); // nothing written
  expect(beside.code).toBe(1);
  expect(beside.lines.at(-1)).toMatch(
    new RegExp(`^ciba-checkout: failed to start: data layout ${DATA_LAYOUT_VERSION} .* of data layout 1;`),
  );
}, 90_000);

/** The previous release's registration script (before data layouts), as it runs in that release. */
const PREVIOUS_RELEASE_SCRIPT = readFileSync(new URL('../fixtures/register-key-holder-1.lua', import.meta.url), 'utf8');

test('when a process of the release before data layouts starts beside a layout-2 process, then it is refused with its key-conflict answer, also after renewals; the layout-2 process keeps running', async () => {
  await startAfresh();
  const key = newKey();
  const fp = keyFingerprint(Buffer.from(key, 'base64'));
  const a = await spawnService('a', 'worker', env(key));
  procs.add(a);
  const holders = `${prefix}key-holders`;
  // The previous release's start-up registration, same key: it checks no layouts, only key conflicts.
  const previousReleaseStarts = () =>
    redis.eval(PREVIOUS_RELEASE_SCRIPT, 1, holders, Date.now(), Date.now() + 10_000, 'previous-release', fp, fp);
  expect(await previousReleaseStarts()).toBe(1); // before: 0, registered beside the layout-2 fleet
  expect(await redis.hexists(holders, 'previous-release')).toBe(0);

  // `a` renews its entry and the guard with it (the guard skipped by its own check), so the refusal holds.
  const guardedUntil = async () => Number((await redis.hget(holders, 'layout-guard'))?.split('|')[0]);
  const first = await guardedUntil();
  await waitFor(async () => (await guardedUntil()) > first, 15_000, 'a renewal of the guard');
  expect(a.alive()).toBe(true);
  expect(await previousReleaseStarts()).toBe(1);
}, 60_000);
