// Jest project `cluster`: starts (or reuses) the local 6-node Redis Cluster unless one is given, and
// creates in the background the private clusters of the suites in this run that kill nodes or move
// slots: creating one takes seconds of waiting on its gossip, which then overlap the other suites
// instead of each suite waiting for its own (scripts/redis-cluster.sh serializes the two callers).
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { clusterSuites } from '../../jest.config.js';
import { PRIVATE_CLUSTERS, privateClusterEnv } from './private-clusters.mjs';

const script = fileURLToPath(new URL('../../scripts/redis-cluster.sh', import.meta.url));

export default function clusterSetup(globalConfig, projectConfig) {
  if (!process.env.TEST_REDIS_CLUSTER_NODES) execFileSync(script, { stdio: ['ignore', 'ignore', 'inherit'] });
  // A suite runs if its lane has it (jest.config.js, as the project's testMatch) and the command
  // line's paths and ignore patterns let it through.
  const selected = globalConfig.testPathPatterns.toExecutor({ rootDir: projectConfig.rootDir });
  const ignored = projectConfig.testPathIgnorePatterns.map((p) => new RegExp(p));
  // Marks the clusters this run creates (not those it finds running, maybe another run's): teardown stops only those.
  const owner = `jest-${process.pid}-${Date.now()}`;
  const started = [];
  for (const [suite, basePort] of Object.entries(PRIVATE_CLUSTERS)) {
    const path = `${projectConfig.rootDir}/test/integration/${suite}.test.ts`;
    if (!clusterSuites.includes(suite) || !selected.isMatch(path) || ignored.some((re) => re.test(path))) continue;
    // Its output is of no use here: the suite runs the script again and reports what went wrong.
    const env = { ...privateClusterEnv(basePort), REDIS_CLUSTER_OWNER: owner };
    spawn(script, [], { env, stdio: 'ignore', detached: true }).unref();
    started.push(basePort);
  }
  // For cluster-teardown.mjs (same process).
  process.env.CIBA_TEST_PRIVATE_CLUSTERS = started.join(',');
  process.env.CIBA_TEST_CLUSTER_OWNER = owner;
}
