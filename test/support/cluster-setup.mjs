// Jest project `cluster`: starts (or reuses) the local 6-node Redis Cluster unless one is given.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function clusterSetup() {
  if (process.env.TEST_REDIS_CLUSTER_NODES) return;
  const script = fileURLToPath(new URL('../../scripts/redis-cluster.sh', import.meta.url));
  execFileSync(script, { stdio: ['ignore', 'ignore', 'inherit'] });
}
