/** ESM all the way: oidc-provider, jose, openid-client and oauth4webapi are ESM-only. */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json' }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testTimeout: 30000,
  // Every suite closes what it opens; this is only the safety net that keeps CI from waiting on a
  // straggling socket of a child process after all results are in.
  forceExit: true,
};
