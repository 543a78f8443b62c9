// Jest project `cluster`: stops the private clusters cluster-setup.mjs created, also one whose suite
// did not get to stop it (a failed beforeAll, a suite left out by a filter jest applies later).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { privateClusterEnv } from './private-clusters.mjs';

const script = fileURLToPath(new URL('../../scripts/redis-cluster.sh', import.meta.url));

export default function clusterTeardown() {
  const started = (process.env.CIBA_TEST_PRIVATE_CLUSTERS ?? '').split(',').filter(Boolean);
  for (const basePort of started)
    execFileSync(script, ['stop'], { env: privateClusterEnv(Number(basePort)), stdio: 'ignore' });
}
