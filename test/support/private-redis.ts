import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisAnswers } from '../../src/store/redis.js';
import { waitFor } from './api.js';
import { freePort } from './system.js';

/**
 * A redis-server of the test's own on a free port, with an append-only file in a temp directory so
 * its data survives a kill and restart. Never the machine's shared 6379.
 */
export interface PrivateRedis {
  url: string;
  port: number;
  /** SIGKILL: a crash, not a clean shutdown. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (no-op while it runs). */
  start(): Promise<void>;
  /** Kills it and removes its directory. */
  destroy(): Promise<void>;
}

/** `args`: more redis-server options (an eviction policy, a renamed CONFIG, cluster mode). */
export async function startPrivateRedis(args: string[] = []): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ciba-redis-'));
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const answers = (): Promise<boolean> => redisAnswers(`redis://127.0.0.1:${port}`);

  async function start(): Promise<void> {
    if (child) return; // already running
    const c = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        dir,
        ...args,
      ],
      { stdio: 'ignore' },
    );
    child = c;
    exited = new Promise((resolve) => {
      c.once('exit', () => {
        resolve();
      });
    });
    await waitFor(answers, 5000, `private redis-server on port ${port} to start`);
  }

  async function kill(): Promise<void> {
    child?.kill('SIGKILL');
    await exited;
    child = null;
  }

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    start,
    async destroy() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
