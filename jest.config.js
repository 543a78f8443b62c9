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
];
const CLUSTER_ONLY = ['cluster-failover', 'cluster-migration', 'cluster-ask-wait', 'store-checks', 'sharded-pubsub'];
const files = (names) => names.map((n) => `<rootDir>/test/integration/${n}.test.ts`);

export default {
  projects: [
    {
      ...base,
      displayName: 'single',
      // Negated here, not in testPathIgnorePatterns: npm scripts pass that one on the command line.
      testMatch: ['<rootDir>/test/**/*.test.ts', ...CLUSTER_ONLY.map((n) => `!**/${n}.test.ts`)],
    },
    {
      ...base,
      displayName: 'cluster',
      testMatch: files([...BOTH_MODES, ...CLUSTER_ONLY]),
      setupFiles: ['<rootDir>/test/support/cluster-mode.mjs'],
      globalSetup: '<rootDir>/test/support/cluster-setup.mjs',
    },
  ],
  testTimeout: 30000,
  // Every suite closes what it opens; this is only the safety net that keeps CI from waiting on a
  // straggling socket of a child process after all results are in.
  forceExit: true,
};
