import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createPublicKey, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { startService } from './composition/service.js';
import { redisAnswers } from './store/redis.js';
import { ensureDevCertificates, type DevCertificates } from './sandbox/certs.js';
import { startSandboxBank, type SandboxBank, type SandboxBankOptions } from './sandbox/bank.js';

/**
 * `npm run demo`: everything on a laptop in one process — dev certificates, the sandbox bank
 * (CIBA over mTLS, bank-app page) and the service (API, worker, storefront). The one place outside
 * src/sandbox that imports the sandbox.
 */
const HELP = `Usage: npm run demo -- [options]

  --port N             service port (default 3000)
  --bank-port N        sandbox bank HTTPS port (default 8443)
  --app-port N         bank-app page port (default 8444)
  --mode poll|ping     CIBA token delivery mode (default poll)
  --interval S         polling interval the bank advertises, seconds (default 2)
  --auto-approve       the bank approves every request by itself (scripted demos)
  --auto-deny          the bank denies every request by itself
  --approval-delay MS  with --auto-*, wait this long before deciding (default 3000)
  --bank-profile P     sandbox (default) or uk-openbanking (Open Banking UK v3.1.10 domestic
                       payments: consent, CIBA with openbanking_intent_id, payment, status polling)
  --settle-delay MS    uk-openbanking: how long a payment stays Pending at the bank (default 2000)
  --help               this text

Environment: REDIS_URL (default redis://127.0.0.1:6379); with no Redis there, a private
redis-server is started when one is installed. GOTIFY_URL and GOTIFY_TOKEN push each bank request
to a Gotify server (a phone notification), besides the console line. Files go to .demo/.`;

type DemoOptions = ReturnType<typeof parseOptions>;

function parseOptions() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '3000' },
      'bank-port': { type: 'string', default: '8443' },
      'app-port': { type: 'string', default: '8444' },
      mode: { type: 'string', default: 'poll' },
      interval: { type: 'string', default: '2' },
      'auto-approve': { type: 'boolean', default: false },
      'auto-deny': { type: 'boolean', default: false },
      'approval-delay': { type: 'string', default: '3000' },
      'bank-profile': { type: 'string', default: 'sandbox' },
      'settle-delay': { type: 'string', default: '2000' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  if (values.mode !== 'poll' && values.mode !== 'ping') throw new ConfigError('--mode: must be poll or ping');
  if (values['bank-profile'] !== 'sandbox' && values['bank-profile'] !== 'uk-openbanking') {
    throw new ConfigError('--bank-profile: must be sandbox or uk-openbanking');
  }
  return values;
}

/** Uses the Redis at REDIS_URL, or starts a private one when `redis-server` is installed. */
async function ensureRedis(url: string): Promise<{ url: string; child: ChildProcess | null }> {
  if (await redisAnswers(url)) return { url, child: null };
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    console.error(
      `demo: no Redis answers at ${url} and redis-server is not installed: install it (apt-get install redis-server) or set REDIS_URL.`,
    );
    process.exit(1);
  }
  const port = 6390;
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const privateUrl = `redis://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 50 && !(await redisAnswers(privateUrl)); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  console.log(`[demo] started a private redis-server on ${privateUrl}`);
  return { url: privateUrl, child };
}

/** The token encryption key is kept in .demo/ so pending payments survive a demo restart. */
function demoSecret(dir: string): string {
  const file = join(dir, 'token-key');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

/** The UK profile's variables for the sandbox: its OB API, signed CIBA requests, a demo creditor. */
function openBankingEnv(obApiUrl: string, signingKey: string): Record<string, string> {
  return {
    BANK_PROFILE: 'uk-openbanking',
    BANK_API_URL: obApiUrl,
    BANK_SIGNING_KEY: signingKey,
    CIBA_SIGNED_REQUEST: 'true',
    CIBA_SCOPE: 'openid payments',
    OB_JWS_ISS: 'demo-org-id/demo-software-statement-id',
    OB_CREDITOR_IDENTIFICATION: process.env.OB_CREDITOR_IDENTIFICATION ?? '40400411290112',
  };
}

/** The sandbox bank as the demo runs it: one certificate client, in the chosen delivery mode and profile. */
function demoBankOptions(
  options: DemoOptions,
  certs: DevCertificates,
  redisUrl: string,
  servicePort: number,
): SandboxBankOptions {
  const autoDecision = options['auto-approve'] ? 'approve' : options['auto-deny'] ? 'deny' : undefined;
  const openBanking = options['bank-profile'] === 'uk-openbanking';
  // the shop's signing key: request objects and x-jws-signature (registered with the bank as the client's jwks)
  const signingJwk = createPublicKey(readFileSync(certs.signingKeyPs256)).export({ format: 'jwk' });
  return {
    port: Number(options['bank-port']),
    appPort: Number(options['app-port']),
    certs,
    redisUrl,
    redisPrefix: 'demo-bank:',
    interval: Number(options.interval),
    clients: [
      {
        clientId: 'cibaConformance',
        authMethod: 'tls_client_auth',
        deliveryMode: options.mode as 'poll' | 'ping',
        ...(options.mode === 'ping' ? { notificationEndpoint: `http://127.0.0.1:${servicePort}/ciba/notify` } : {}),
        ...(openBanking ? { openBanking: true, jwks: { keys: [signingJwk] } } : {}),
      },
    ],
    obSettleDelayMs: Number(options['settle-delay']),
    ...(autoDecision ? { autoApprove: autoDecision, approvalDelayMs: Number(options['approval-delay']) } : {}),
    ...(process.env.GOTIFY_URL && process.env.GOTIFY_TOKEN
      ? { gotify: { url: process.env.GOTIFY_URL, token: process.env.GOTIFY_TOKEN } }
      : {}),
  };
}

/** The service's environment: the caller's, pointed at the sandbox bank and the demo's Redis and files. */
function demoServiceEnv(
  options: DemoOptions,
  bank: SandboxBank,
  certs: DevCertificates,
  redisUrl: string,
  dir: string,
): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PORT: String(Number(options.port)),
    REDIS_URL: redisUrl,
    REDIS_PREFIX: 'demo:',
    TOKEN_ENCRYPTION_KEY: demoSecret(dir),
    CATALOG_FILE: process.env.CATALOG_FILE ?? 'catalog.json',
    BANK_ISSUER: bank.issuer,
    BANK_API_URL: bank.apiUrl,
    BANK_CA_CERT: certs.caCert,
    BANK_CLIENT_ID: 'cibaConformance',
    BANK_CLIENT_AUTH_METHOD: 'tls_client_auth',
    BANK_CLIENT_PFX: certs.clientPfx,
    BANK_CLIENT_PFX_PASSPHRASE: certs.clientPfxPassphrase,
    // the sandbox bank handles HTTP/1.1 pipelining (opt-in: the service's default is off)
    BANK_PIPELINING: process.env.BANK_PIPELINING ?? '8',
    CIBA_DELIVERY_MODE: options.mode,
    ...(options['bank-profile'] === 'uk-openbanking' ? openBankingEnv(bank.obApiUrl, certs.signingKeyPs256) : {}),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  };
}

function printWelcome(options: DemoOptions, bank: SandboxBank): void {
  const port = Number(options.port);
  console.log('');
  console.log(`  Storefront   http://localhost:${port}/`);
  console.log(`  Bank app     ${bank.appUrl}   (sign in as user / password)`);
  console.log(`  API docs     http://localhost:${port}/docs`);
  console.log(`  Sandbox bank ${bank.issuer}   (CIBA ${options.mode} mode, mTLS with CN=client)`);
  if (options['bank-profile'] === 'uk-openbanking') {
    console.log(`  Bank profile uk-openbanking   (Open Banking UK v3.1.10 at ${bank.obApiUrl})`);
  }
  console.log('');
  console.log('  Buy something in the storefront, then approve it in the bank app. Ctrl-C stops everything.');
  console.log('');
}

/** Ctrl-C: the service first (it drains its work), then the bank, then a private Redis. */
function stopOnSignals(close: () => Promise<void>): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    console.log('\n[demo] stopping…');
    void (async () => {
      await close();
      process.exit(0);
    })();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

async function main(): Promise<void> {
  const options = parseOptions();
  const dir = '.demo';
  mkdirSync(dir, { recursive: true });
  const certs = ensureDevCertificates(join(dir, 'certs'));
  const redis = await ensureRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const bank = await startSandboxBank(demoBankOptions(options, certs, redis.url, Number(options.port)));
  const config = loadConfig(demoServiceEnv(options, bank, certs, redis.url, dir));
  const service = await startService(config, { logger: createLogger(config.logLevel) });
  printWelcome(options, bank);
  stopOnSignals(async () => {
    await service.close();
    await bank.close();
    redis.child?.kill('SIGTERM');
  });
}

main().catch((error: unknown) => {
  console.error(`demo: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
