/** The suites with a Redis Cluster of their own (test/support/private-cluster.ts), and its first port (BASE_PORT there). */
export const PRIVATE_CLUSTERS = {
  'cluster-failover': 7111,
  'cluster-migration': 7121,
  'cluster-resend': 7141,
  'cluster-ask-wait': 7161,
  'sharded-pubsub': 7181,
};

/** How scripts/redis-cluster.sh is told which cluster: its ports and its directory (as private-cluster.ts does). */
export function privateClusterEnv(basePort) {
  return {
    ...process.env,
    REDIS_CLUSTER_BASE_PORT: String(basePort),
    REDIS_CLUSTER_DIR: `/tmp/ciba-redis-cluster-${basePort}`,
  };
}
