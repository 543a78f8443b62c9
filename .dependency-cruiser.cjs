/**
 * The house plan as rules (docs/architecture.md): imports point inward, no cycles, the sandbox
 * bank is another program. `npm test` runs `npm run depcheck` before the suites; a broken rule
 * fails it with the rule's name and the offending import.
 *
 * Layers, inner to outer:
 *   kernel      src/*.ts (clock, config, errors, problem-codes, logger, metrics, tracing)
 *   payments    the use cases and the ports they own
 *   ciba, bank, store, webhooks   implement the ports (protocols, bank API, Redis, deliveries)
 *   jobs, http  thin adapters: parse, call one use case, answer
 *   composition buildParts / startApi / startWorker; main.ts and demo.ts start it
 */
const KERNEL = '^src/[^/]+[.]ts$';

const WIRING = '^src/(composition/|main[.]ts$|demo[.]ts$)';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No module reaches itself again through its imports.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'kernel-imports-no-layer',
      severity: 'error',
      comment: 'The shared kernel (src/*.ts but main and demo) is imported by every layer and imports none.',
      from: { path: KERNEL, pathNot: WIRING },
      to: { path: '^src/[^/]+/' },
    },
    {
      name: 'payments-imports-inward-only',
      severity: 'error',
      comment:
        'Use cases own their ports (interfaces); the store, the CIBA client and the bank client implement them. ' +
        'payments imports only the kernel and itself.',
      from: { path: '^src/payments/' },
      to: { path: '^src/(http|jobs|store|ciba|bank|webhooks|composition|sandbox)/' },
    },
    {
      name: 'ciba-bank-no-outer-layers',
      severity: 'error',
      comment: 'Protocol and bank clients know neither HTTP routes, jobs, Redis nor webhooks.',
      from: { path: '^src/(ciba|bank)/' },
      to: { path: '^src/(http|jobs|store|webhooks|composition|sandbox)/' },
    },
    {
      name: 'ciba-bank-no-express-or-ioredis',
      severity: 'error',
      comment: 'ciba and bank speak HTTP through undici only; express and ioredis belong to http and store.',
      from: { path: '^src/(ciba|bank)/' },
      to: { path: '(^|/)node_modules/(express|ioredis)/' },
    },
    {
      name: 'express-only-in-http',
      severity: 'error',
      comment: 'express is the http adapter (and what composition mounts); the sandbox bank is another program.',
      from: { path: '^src/', pathNot: '^src/(http|composition|sandbox)/' },
      to: { path: '(^|/)node_modules/express/' },
    },
    {
      name: 'ioredis-only-in-store',
      severity: 'error',
      comment: 'Redis is reached through src/store (keys.ts, Lua scripts); the sandbox bank has its own.',
      from: { path: '^src/', pathNot: '^src/(store|sandbox)/' },
      to: { path: '(^|/)node_modules/ioredis/' },
    },
    {
      name: 'store-no-outer-layers',
      severity: 'error',
      comment: 'The store implements ports; it does not call protocols, jobs or routes.',
      from: { path: '^src/store/' },
      to: { path: '^src/(http|jobs|ciba|bank|webhooks|composition|sandbox)/' },
    },
    {
      name: 'webhooks-no-outer-layers',
      severity: 'error',
      comment: 'Webhook delivery is driven by the worker and read by routes; it imports neither.',
      from: { path: '^src/webhooks/' },
      to: { path: '^src/(http|ciba|bank|composition|sandbox)/' },
    },
    {
      name: 'adapters-not-wiring',
      severity: 'error',
      comment: 'Routes and job handlers are wired by composition; they never import it or the sandbox.',
      from: { path: '^src/(jobs|http)/' },
      to: { path: '^src/(composition|sandbox)/' },
    },
    {
      name: 'http-not-jobs',
      severity: 'error',
      comment: 'Routes reach work through use cases and the scheduler port, not through src/jobs.',
      from: { path: '^src/http/' },
      to: { path: '^src/jobs/' },
    },
    {
      name: 'http-not-store',
      severity: 'error',
      comment: 'Routes call use cases, which own the ports; the store is wired in by composition.',
      from: { path: '^src/http/' },
      to: { path: '^src/store/' },
    },
    {
      name: 'jobs-call-use-cases-not-clients',
      severity: 'error',
      comment: 'Job handlers parse the work item and call one use case; the CIBA and bank clients sit behind ports.',
      from: { path: '^src/jobs/' },
      to: { path: '^src/(ciba|bank)/' },
    },
    {
      name: 'crypto-imports-kernel-only',
      severity: 'error',
      comment: 'Sealing, hashing and ids are a leaf below the domain: importing a layer would make a folder cycle.',
      from: { path: '^src/crypto/' },
      to: { path: '^src/(payments|http|jobs|store|ciba|bank|webhooks|composition|sandbox)/' },
    },
    {
      name: 'http-not-protocol-clients',
      severity: 'error',
      comment: 'Routes reach the bank only through use cases; the CIBA and bank clients are wired in by composition.',
      from: { path: '^src/http/' },
      to: { path: '^src/(ciba|bank)/' },
    },
    {
      name: 'jobs-not-webhooks',
      severity: 'error',
      comment:
        'webhooks hands its deliveries to the scheduler (types only); jobs importing webhooks would close a cycle.',
      from: { path: '^src/jobs/' },
      to: { path: '^src/webhooks/' },
    },
    {
      name: 'webhooks-use-jobs-types-only',
      severity: 'error',
      comment: 'Deliveries are scheduled through the Scheduler interface; no jobs code runs from webhooks.',
      from: { path: '^src/webhooks/' },
      to: { path: '^src/jobs/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'jobs-not-http',
      severity: 'error',
      from: { path: '^src/jobs/' },
      to: { path: '^src/http/' },
    },
    {
      name: 'only-the-demo-imports-the-sandbox',
      severity: 'error',
      comment:
        'The sandbox bank is another program (node dist/sandbox/main.js); only `npm run demo` starts it in-process.',
      from: { path: '^src/', pathNot: '^src/(sandbox/|demo[.]ts$)' },
      to: { path: '^src/sandbox/' },
    },
    {
      name: 'sandbox-is-another-program',
      severity: 'error',
      comment: 'The sandbox bank shares only the kernel with the service, never its layers.',
      from: { path: '^src/sandbox/' },
      to: { path: '^src/(http|jobs|store|payments|ciba|bank|webhooks|composition)/' },
    },
    {
      name: 'only-wiring-imports-composition',
      severity: 'error',
      from: { path: '^src/', pathNot: WIRING },
      to: { path: '^src/composition/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
    exclude: { path: '^src/(http|sandbox)/public/' },
  },
};
