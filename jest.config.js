/** ESM all the way: oidc-provider, jose, openid-client and oauth4webapi are ESM-only. */
const base = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json' }] },
};

/**
 * Suites that touch the service's Redis run a second time against a local Redis Cluster (issue 12.2);
 * the cluster-only suites (failover, slot migration) run only there.
 */
const BOTH_MODES = [
  'scheduler',
  'scheduler-lease',
  'scheduler-coverage',
  'checkout-flow',
  'rate-limits',
  'checkout-api',
  'payment-list',
  'sse',
  'webhooks',
  'push-bombing',
  'retention',
  'conformance-reconciliation',
  'conformance-ping',
  'payment-notes',
  'store-scripts',
  'store-replay',
  'idempotency-claims',
  'webhook-resend',
];
const CLUSTER_ONLY = [
  'cluster-failover',
  'cluster-migration',
  'cluster-ask-wait',
  'cluster-resend',
  'store-checks',
  'sharded-pubsub',
];

/**
 * Suites that must have the machine to themselves: they start, kill and restart processes or Redis
 * nodes, or bound a latency or a poll gap to a few hundred ms. `npm run test:suites` runs the others
 * two at a time first (TEST_LANE=parallel), then these one at a time (TEST_LANE=serial); most of
 * those others wait on Redis and sockets, so a second worker roughly halves their wall time. A suite
 * that starts bounding a latency belongs here. Unset TEST_LANE: every suite (a single suite, e2e).
 */
const SERIAL = [
  ...CLUSTER_ONLY,
  'chaos',
  'key-check',
  'bank-faults',
  'durable-bank-call',
  'token-during-outage',
  'token-takeover',
  'worker-registry',
  'redis-restart',
  'redis-hang',
  'sigterm-drain',
  'conformance-token-errors',
  'conformance-ping',
  'poll-connections',
  'webhooks',
  'sse',
  'sandbox-gotify',
];
const lane = process.env.TEST_LANE;
if (lane !== undefined && lane !== 'parallel' && lane !== 'serial')
  throw new Error(`TEST_LANE must be parallel or serial, not ${lane}`);
const inLane = (name) => lane === undefined || (lane === 'serial') === SERIAL.includes(name);
const files = (names) => names.filter(inLane).map((n) => `<rootDir>/test/integration/${n}.test.ts`);
/** The cluster project's suites in this lane (test/support/cluster-setup.mjs creates their private clusters). */
export const clusterSuites = [...BOTH_MODES, ...CLUSTER_ONLY].filter(inLane);
const not = (names) => names.map((n) => `!**/${n}.test.ts`);
// Negated here, not in testPathIgnorePatterns: npm scripts pass that one on the command line.
const singleMatch =
  lane === 'serial'
    ? files(SERIAL.filter((n) => !CLUSTER_ONLY.includes(n)))
    : ['<rootDir>/test/**/*.test.ts', ...not(lane === 'parallel' ? SERIAL : CLUSTER_ONLY)];

export default {
  projects: [
    {
      ...base,
      displayName: 'single',
      testMatch: singleMatch,
    },
    {
      ...base,
      displayName: 'cluster',
      testMatch: files(clusterSuites),
      setupFiles: ['<rootDir>/test/support/cluster-mode.mjs'],
      globalSetup: '<rootDir>/test/support/cluster-setup.mjs',
      globalTeardown: '<rootDir>/test/support/cluster-teardown.mjs',
    },
  ],
  testTimeout: 30000,
  // Every suite closes what it opens; this is only the safety net that keeps CI from waiting on a
  // straggling socket of a child process after all results are in.
  forceExit: true,
};
