import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { open } from '../../src/crypto/sealing.js';
import {
  assertBuilt,
  killAll,
  runServiceToExit,
  serviceEnv,
  spawnService,
  type ServiceProcess,
} from '../support/processes.js';
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

/** No bank is contacted before the key check; a closed port keeps discovery failing quietly. */
const env = (key: string) =>
  serviceEnv({
    bank: { issuer: 'https://localhost:9', apiUrl: 'https://localhost:9/api' },
    certs,
    prefix,
    extra: { TOKEN_ENCRYPTION_KEY: key },
  });

const runToExit = (key: string) => runServiceToExit('worker', env(key));

beforeAll(() => {
  assertBuilt();
});
afterAll(async () => {
  await killAll(procs);
  await deleteKeysWithPrefix(prefix);
  redis.disconnect();
});

test('when a process starts with another TOKEN_ENCRYPTION_KEY than the deployment, then it exits at start with one line naming the variable; rotation (new key first) is accepted and re-seals', async () => {
  const first = newKey();
  const a = await spawnService('a', 'worker', env(first));
  procs.add(a);
  const sealed = await redis.get(`${prefix}key-check`);
  expect(open(sealed!, [Buffer.from(first, 'base64')], 'deployment/key-check')).toBe('ciba-checkout key check v1');

  const stranger = await runToExit(newKey());
  expect(stranger.code).toBe(1);
  expect(stranger.lines).toHaveLength(1);
  expect(stranger.lines[0]).toMatch(
    /^ciba-checkout: failed to start: TOKEN_ENCRYPTION_KEY: none of the configured keys/,
  );
  expect(await redis.get(`${prefix}key-check`)).toBe(sealed); // the stranger changed nothing

  // Rotation: the new key first, the old one after: starts, and the check value is now sealed with the new key.
  const rotated = newKey();
  const b = await spawnService('b', 'worker', env(`${rotated},${first}`));
  procs.add(b);
  const resealed = await redis.get(`${prefix}key-check`);
  expect(resealed).not.toBe(sealed);
  expect(open(resealed!, [Buffer.from(rotated, 'base64')], 'deployment/key-check')).toBe('ciba-checkout key check v1');
  // ...so a process left with only the retired key no longer starts
  expect((await runToExit(first)).code).toBe(1);
}, 60_000);
