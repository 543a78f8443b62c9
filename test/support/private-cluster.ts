import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';

/**
 * A Redis Cluster of the test's own (scripts/redis-cluster.sh on other ports and directory), for the
 * tests that kill nodes or move slots: the shared test cluster stays untouched for the other suites.
 */
export interface PrivateCluster {
  seeds: string;
  ports: number[];
  /** A client for the test's own checks (not the service's). */
  admin(): Cluster;
  /** SIGKILL of one node (a crash). */
  kill(port: number): void;
  /** The primary serving `slot`. */
  primaryOf(slot: number): Promise<number>;
  /**
   * Restarts any node that is down (it rejoins as a replica, as a supervisor would restart it) and
   * waits until the cluster is whole; without blocking the test's event loop.
   */
  heal(): Promise<void>;
  stop(): void;
}

const SCRIPT = join(process.cwd(), 'scripts', 'redis-cluster.sh');

export function startPrivateCluster(basePort: number): PrivateCluster {
  const env = {
    ...process.env,
    REDIS_CLUSTER_BASE_PORT: String(basePort),
    REDIS_CLUSTER_DIR: `/tmp/ciba-redis-cluster-${basePort}`,
  };
  const run = (...args: string[]) => execFileSync(SCRIPT, args, { env, encoding: 'utf8' }).trim();
  const seeds = run();
  const ports = Array.from({ length: 6 }, (_, i) => basePort + i);
  const nodes = ports.map((port) => ({ host: '127.0.0.1', port }));
  return {
    seeds,
    ports,
    admin: () => new Cluster(nodes, { retryDelayOnFailover: 200, retryDelayOnClusterDown: 200 }),
    kill(port) {
      const pid = execFileSync('redis-cli', ['-p', String(port), 'info', 'server'], { encoding: 'utf8' }).match(
        /process_id:(\d+)/,
      )?.[1];
      if (!pid) throw new Error(`no redis-server on ${port}`);
      process.kill(Number(pid), 'SIGKILL');
    },
    async primaryOf(slot) {
      for (const port of ports) {
        const probe = new Redis(port, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        probe.on('error', () => undefined);
        try {
          await probe.connect();
          const range = (await probe.cluster('SLOTS')).find(([from, to]) => from <= slot && slot <= to);
          const primary = range?.[2]?.[1];
          if (primary !== undefined) return primary;
        } catch {
          // a node that is down: ask the next
        } finally {
          probe.disconnect();
        }
      }
      throw new Error(`slot ${slot} is not served`);
    },
    async heal() {
      await promisify(execFile)(SCRIPT, [], { env, encoding: 'utf8' });
    },
    stop() {
      run('stop');
    },
  };
}
