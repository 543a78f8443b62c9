// Jest project `cluster`: stops the private clusters cluster-setup.mjs created, also one whose suite
// did not get to stop it (a failed beforeAll, a suite left out by a filter jest applies later). Only
// those this run created (the owner mark of scripts/redis-cluster.sh): one it found running and
// reused may be another run's (another worktree's), still in use.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { privateClusterEnv } from './private-clusters.mjs';

const script = fileURLToPath(new URL('../../scripts/redis-cluster.sh', import.meta.url));

export default function clusterTeardown() {
  const started = (process.env.CIBA_TEST_PRIVATE_CLUSTERS ?? '').split(',').filter(Boolean);
  const owner = process.env.CIBA_TEST_CLUSTER_OWNER ?? '';
  if (!owner) return;
  for (const basePort of started) {
    const env = { ...privateClusterEnv(Number(basePort)), REDIS_CLUSTER_OWNER: owner };
    execFileSync(script, ['stop'], { env, stdio: 'ignore' });
  }
}
