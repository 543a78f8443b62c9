import { z } from 'zod';
import { startSandboxBank, type SandboxBank, type SandboxBankOptions } from './bank.js';
import { ensureDevCertificates, type DevCertificates } from './certs.js';

/**
 * Runs the sandbox bank on its own (`node dist/sandbox/main.js`). A separate program from the
 * service, so it reads its own environment here; the service's config.ts is not involved.
 */
const port = z.coerce.number().int().min(0).max(65535);
const envSchema = z.object({
  SANDBOX_PORT: port.default(8443),
  SANDBOX_APP_PORT: port.default(8444),
  // compose.yaml: listen on every interface, and name the compose service in the issuer.
  SANDBOX_HOST: z.string().min(1).default('127.0.0.1'),
  SANDBOX_ISSUER_HOST: z.enum(['localhost', 'bank']).default('localhost'),
  SANDBOX_APP_HOST: z.string().min(1).default('127.0.0.1'),
  SANDBOX_CERT_DIR: z.string().min(1).default('.demo/certs'),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  SANDBOX_REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_.-]{1,64}$/)
    .default('sandbox-bank:'),
  SANDBOX_CLIENT_ID: z.string().min(1).default('cibaConformance'),
  SANDBOX_DELIVERY_MODE: z.enum(['poll', 'ping']).default('poll'),
  SANDBOX_NOTIFICATION_ENDPOINT: z.url().optional(),
  SANDBOX_INTERVAL: z.coerce.number().int().min(1).max(60).default(5),
  SANDBOX_AUTO_APPROVE: z.enum(['approve', 'deny']).optional(),
  // The reference tutorial's Gotify notification method: both set, or neither.
  GOTIFY_URL: z.url({ protocol: /^https?$/ }).optional(),
  GOTIFY_TOKEN: z.string().min(1).optional(),
});

type SandboxEnv = z.infer<typeof envSchema>;

function exitWith(message: string): never {
  console.error(`sandbox bank: ${message}`);
  process.exit(1);
}

/** The environment, checked once; a bad or inconsistent setting ends the program with one line. */
function readEnvironment(): SandboxEnv {
  const parsed = envSchema.safeParse(process.env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    exitWith(`bad ${issue?.path.join('.') ?? 'environment'}: ${issue?.message ?? 'invalid'}`);
  }
  const env = parsed.data;
  if (env.SANDBOX_DELIVERY_MODE === 'ping' && env.SANDBOX_NOTIFICATION_ENDPOINT === undefined) {
    exitWith('SANDBOX_NOTIFICATION_ENDPOINT is required with SANDBOX_DELIVERY_MODE=ping');
  }
  if ((env.GOTIFY_URL === undefined) !== (env.GOTIFY_TOKEN === undefined)) {
    exitWith('GOTIFY_URL and GOTIFY_TOKEN go together; set both or neither');
  }
  return env;
}

/** One certificate-authenticated client, as the environment describes it. */
function sandboxOptions(env: SandboxEnv, certs: DevCertificates): SandboxBankOptions {
  return {
    host: env.SANDBOX_HOST,
    port: env.SANDBOX_PORT,
    issuerHost: env.SANDBOX_ISSUER_HOST,
    appHost: env.SANDBOX_APP_HOST,
    appPort: env.SANDBOX_APP_PORT,
    certs,
    redisUrl: env.REDIS_URL,
    redisPrefix: env.SANDBOX_REDIS_PREFIX,
    interval: env.SANDBOX_INTERVAL,
    clients: [
      {
        clientId: env.SANDBOX_CLIENT_ID,
        authMethod: 'tls_client_auth',
        deliveryMode: env.SANDBOX_DELIVERY_MODE,
        ...(env.SANDBOX_NOTIFICATION_ENDPOINT === undefined
          ? {}
          : { notificationEndpoint: env.SANDBOX_NOTIFICATION_ENDPOINT }),
      },
    ],
    ...(env.SANDBOX_AUTO_APPROVE === undefined ? {} : { autoApprove: env.SANDBOX_AUTO_APPROVE }),
    ...(env.GOTIFY_URL === undefined || env.GOTIFY_TOKEN === undefined
      ? {}
      : { gotify: { url: env.GOTIFY_URL, token: env.GOTIFY_TOKEN } }),
  };
}

/** What the shop's environment needs, printed once at start. */
function printSettings(env: SandboxEnv, bank: SandboxBank, certs: DevCertificates): void {
  console.log(`[bank] issuer ${bank.issuer}  (BANK_ISSUER)`);
  console.log(`[bank] payment API ${bank.apiUrl}  (BANK_API_URL)`);
  console.log(`[bank] CA certificate ${certs.caCert}  (BANK_CA_CERT)`);
  console.log(`[bank] client ${env.SANDBOX_CLIENT_ID}: ${certs.clientCert} + ${certs.clientKey} or ${certs.clientPfx}`);
  console.log(`[bank] bank app (the phone) ${bank.appUrl}  sign in as user / password`);
  if (env.GOTIFY_URL !== undefined) console.log(`[bank] new requests are also pushed to Gotify at ${env.GOTIFY_URL}`);
}

/** SIGINT/SIGTERM close the bank once; a close that hangs is cut off after 5 s. */
function closeOnSignals(bank: SandboxBank): void {
  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    console.log(`[bank] ${signal}: shutting down`);
    const force = setTimeout(() => process.exit(1), 5000);
    force.unref();
    bank.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => {
    shutdown('SIGINT');
  });
  process.on('SIGTERM', () => {
    shutdown('SIGTERM');
  });
}

async function main(): Promise<void> {
  const env = readEnvironment();
  const certs = ensureDevCertificates(env.SANDBOX_CERT_DIR);
  const bank = await startSandboxBank(sandboxOptions(env, certs));
  printSettings(env, bank, certs);
  closeOnSignals(bank);
}

main().catch((error: unknown) => {
  console.error(`sandbox bank: ${error instanceof Error ? error.message : 'start-up failed'}`);
  process.exit(1);
});
