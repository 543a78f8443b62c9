// Jest project `cluster`: the suites' store is the local Redis Cluster (see test/support/redis.ts).
process.env.TEST_REDIS_MODE = 'cluster';
