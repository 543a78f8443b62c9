import { z } from 'zod';
import { parseTrustProxy, type TrustProxy } from './net-address.js';
import { parseTracingEnv, type TracingConfig } from './tracing-config.js';

/**
 * The service's configuration, read from the environment once at start-up.
 * This module is the only reader of `process.env`; everything else takes a typed `Config`.
 * A bad or missing value stops start-up with one line naming the variable.
 */

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const csv = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0),
);
const url = z.url();

const envSchema = z.object({
  // service
  PORT: int(0, 65535).default(3000),
  PUBLIC_BASE_URL: url.optional(),
  ROLE: z.enum(['api', 'worker', 'all']).default('all'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SHOP_API_KEY: z.string().min(16).optional(),
  STOREFRONT_ORIGIN: z.string().optional(),
  STOREFRONT_ENABLED: bool.default(true),
  TRUST_PROXY: z.string().default('false'),
  SHUTDOWN_TIMEOUT_MS: int(100, 120_000).default(10_000),
  // store
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  REDIS_CLUSTER_NODES: csv
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'host:port seed nodes, comma-separated')).min(1))
    .optional(),
  SCHEDULER_SHARDS: int(1, 1024).optional(),
  REDIS_WAIT_REPLICAS: int(0, 16).optional(),
  REDIS_WAIT_TIMEOUT_MS: int(1, 10_000).default(100),
  REDIS_COMMAND_TIMEOUT_MS: int(100, 60_000).default(2000),
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_.-]{1,64}$/)
    .default('ciba:'),
  TOKEN_ENCRYPTION_KEY: z.string(),
  PAYMENT_RETENTION_HOURS: int(1, 24 * 365).default(24 * 30),
  // shop
  CATALOG_FILE: z.string().default('catalog.json'),
  CURRENCY: z
    .string()
    .regex(/^[a-z]{3}$/)
    .default('eur'),
  MERCHANT_NAME: z.string().min(1).max(70).default('Demo Tea Shop'),
  MERCHANT_IBAN: z
    .string()
    .regex(/^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$/)
    .default('DE89370400440532013000'),
  // bank
  BANK_PROFILE: z.enum(['sandbox', 'uk-openbanking']).default('sandbox'),
  BANK_ISSUER: url,
  BANK_API_URL: url,
  BANK_CA_CERT: z.string().min(1),
  BANK_CLIENT_ID: z.string().min(1),
  BANK_CLIENT_AUTH_METHOD: z
    .enum(['tls_client_auth', 'private_key_jwt', 'client_secret_basic'])
    .default('tls_client_auth'),
  BANK_CLIENT_CERT: z.string().optional(),
  BANK_CLIENT_KEY: z.string().optional(),
  BANK_CLIENT_PFX: z.string().optional(),
  BANK_CLIENT_PFX_PASSPHRASE: z.string().optional(),
  BANK_CLIENT_SECRET: z.string().optional(),
  BANK_SIGNING_KEY: z.string().optional(),
  BANK_SIGNING_KID: z.string().min(1).max(128).optional(),
  BANK_SIGNING_ALG: z.enum(['PS256', 'ES256']).default('PS256'),
  BANK_ID_TOKEN_ALG: z.enum(['PS256', 'ES256', 'RS256']).default('PS256'),
  BANK_MAX_CONNECTIONS: int(1, 1024).default(32),
  BANK_PIPELINING: int(1, 64).default(1),
  BANK_TIMEOUT_MS: int(100, 120_000).default(10_000),
  // Open Banking UK profile (BANK_PROFILE=uk-openbanking)
  OB_FINANCIAL_ID: z.string().min(1).max(40).optional(),
  OB_JWS_SIGNATURE: bool.default(true),
  OB_JWS_ISS: z.string().min(1).max(128).optional(),
  OB_JWS_TAN: z.string().min(1).max(128).default('openbanking.org.uk'),
  OB_RISK_PAYMENT_CONTEXT_CODE: z
    .enum(['BillPayment', 'EcommerceGoods', 'EcommerceServices', 'Other', 'PartyToParty'])
    .default('EcommerceGoods'),
  OB_RISK_MERCHANT_CATEGORY_CODE: z
    .string()
    .regex(/^[0-9]{3,4}$/)
    .optional(),
  OB_CREDITOR_SCHEME: z
    .enum(['UK.OBIE.SortCodeAccountNumber', 'UK.OBIE.IBAN'])
    .default('UK.OBIE.SortCodeAccountNumber'),
  OB_CREDITOR_IDENTIFICATION: z
    .string()
    .regex(/^[A-Z0-9]{6,34}$/)
    .optional(),
  // CIBA
  CIBA_DELIVERY_MODE: z.enum(['poll', 'ping']).default('poll'),
  CIBA_SCOPE: z
    .string()
    .refine((s) => s.split(' ').includes('openid'), 'must hold openid')
    .default('openid profile'),
  CIBA_REQUESTED_EXPIRY: int(1, 3600).default(200),
  CIBA_SIGNED_REQUEST: bool.default(false),
  CIBA_REQUIRE_GRANTED_DETAILS: bool.default(true),
  // callbacks
  WEBHOOK_URL: url.optional(),
  WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/=]{16,}$/, 'must be whsec_ followed by base64')
    .optional(),
  WEBHOOK_RETRY_SCHEDULE: z
    .string()
    .regex(/^\d+(,\d+)*$/, 'seconds, comma-separated')
    .transform((v) => v.split(',').map(Number))
    .refine(
      (s) => s.every((v, i) => i === 0 || v >= (s[i - 1] ?? 0)),
      'offsets from the first attempt must not decrease',
    )
    .default([0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]),
  WEBHOOK_ALLOW_PRIVATE: bool.default(false),
  WEBHOOK_TIMEOUT_MS: int(100, 60_000).default(10_000),
  CALLBACK_ALLOWED_ORIGINS: csv.default([]),
  // limits
  RATE_LIMIT_CHECKOUT_PER_MINUTE: int(0, 1_000_000).default(60),
  RATE_LIMIT_LOGIN_HINT_PER_MINUTE: int(0, 1_000_000).default(5),
  RATE_LIMIT_LOGIN_HINT_PER_HOUR: int(0, 1_000_000).default(20),
  RATE_LIMIT_LOGIN_HINT_PER_DAY: int(0, 1_000_000).default(50),
  CHECKOUT_MAX_PENDING_PER_LOGIN_HINT: int(0, 100).default(1),
  DENIAL_COOLDOWN_SECONDS: int(0, 86_400).default(30),
  DENIAL_COOLDOWN_MAX_SECONDS: int(0, 7 * 86_400).default(3600),
  SSE_MAX_STREAMS_PER_PAYMENT: int(1, 1000).default(5),
  SSE_MAX_STREAMS: int(1, 1_000_000).default(10_000),
  METRICS_TOKEN: z.string().min(16).optional(),
  METRICS_PORT: int(0, 65535).optional(),
  // worker
  WORKER_CONCURRENCY: int(1, 10_000).default(256),
  WORKER_LEASE_MS: int(1000, 3_600_000).default(6000),
  WORKER_MAX_HOLD_MS: int(1000, 3_600_000).optional(),
});

export type Env = z.input<typeof envSchema>;

/** The Open Banking UK profile's settings (v3.1.10 domestic payments); see src/bank/uk-openbanking. */
export interface OpenBankingConfig {
  /** x-fapi-financial-id; only sent when set (optional in later v3.1.x versions). */
  financialId: string | undefined;
  /** Send x-jws-signature on POSTs, with `http://openbanking.org.uk/iss` = jwsIssuer and tan = trustAnchor. */
  jwsSignature: boolean;
  jwsIssuer: string | undefined;
  trustAnchor: string;
  risk: { paymentContextCode: string; merchantCategoryCode: string | undefined };
  creditor: { schemeName: string; identification: string };
}

export interface Config {
  bankProfile: 'sandbox' | 'uk-openbanking';
  /** Set exactly when bankProfile is uk-openbanking. */
  openBanking: OpenBankingConfig | undefined;
  port: number;
  publicBaseUrl: string;
  role: 'api' | 'worker' | 'all';
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  shopApiKey: string | undefined;
  storefrontOrigin: string | undefined;
  storefrontEnabled: boolean;
  /** Express's `trust proxy`: false, a hop count, or trusted proxy addresses/CIDRs (never "everyone"). */
  trustProxy: TrustProxy;
  shutdownTimeoutMs: number;
  redisUrl: string;
  /** Seed nodes of a Redis Cluster; when set, the service runs in cluster mode and `redisUrl` is unused. */
  redisClusterNodes: { host: string; port: number }[] | null;
  redisPrefix: string;
  /** Scheduler shards new payments are spread over (1 on one Redis, 16 on a cluster by default). */
  schedulerShards: number;
  /** WAIT after money transitions: replicas to acknowledge (1 on a cluster, 0 on one Redis by default). */
  redisWait: { replicas: number; timeoutMs: number };
  /** A Redis command unanswered this long fails (a partitioned primary that accepts TCP but never answers). */
  redisCommandTimeoutMs: number;
  /** 32 bytes for AES-256-GCM; older keys (rotation) follow. */
  tokenEncryptionKeys: Buffer[];
  paymentRetentionSeconds: number;
  catalogFile: string;
  currency: string;
  merchantName: string;
  merchantIban: string;
  bank: {
    issuer: string;
    apiUrl: string;
    caCertFile: string;
    clientId: string;
    clientAuthMethod: 'tls_client_auth' | 'private_key_jwt' | 'client_secret_basic';
    clientCertFile: string | undefined;
    clientKeyFile: string | undefined;
    clientPfxFile: string | undefined;
    clientPfxPassphrase: string | undefined;
    clientSecret: string | undefined;
    signingKeyFile: string | undefined;
    /** The `kid` registered for BANK_SIGNING_KEY (e.g. in the OB directory); default: its JWK thumbprint. */
    signingKid?: string;
    signingAlg: 'PS256' | 'ES256';
    idTokenAlg: 'PS256' | 'ES256' | 'RS256';
    maxConnections: number;
    /** Token polls in flight at once on one bank connection (HTTP/1.1 pipelining); 1 (default) is off. */
    pipelining: number;
    timeoutMs: number;
  };
  ciba: {
    deliveryMode: 'poll' | 'ping';
    scope: string;
    requestedExpiry: number;
    signedRequest: boolean;
    /** RFC 9396 §7: the token response must carry the granted authorization_details (default); false only for a bank known not to return them. */
    requireGrantedDetails: boolean;
  };
  webhooks: {
    url: string | undefined;
    secret: string | undefined;
    retryScheduleSeconds: number[];
    allowPrivate: boolean;
    timeoutMs: number;
    callbackAllowedOrigins: string[];
  };
  limits: {
    checkoutPerMinute: number;
    loginHintPerMinute: number;
    loginHintPerHour: number;
    loginHintPerDay: number;
    /** Requests of one customer waiting for approval at once (0 = no limit). */
    maxPendingPerLoginHint: number;
    /** Wait after a customer's first denial, doubled for each further one within a day (0 = off). */
    denialCooldownSeconds: number;
    denialCooldownMaxSeconds: number;
  };
  sse: { maxStreamsPerPayment: number; maxStreams: number };
  /** /metrics: on its own port (any role), and/or on the API port behind a bearer token; else not served. */
  metrics: { token: string | undefined; port: number | undefined };
  workerConcurrency: number;
  /** OpenTelemetry tracing (OTLP over HTTP); null = off, no SDK loaded. */
  tracing: TracingConfig | null;
  /**
   * How long a claimed item's lease lasts; the worker renews it every third of that while the item is
   * in hand, so a crashed worker's work is taken over within about one lease (issue 11.5).
   */
  workerLeaseMs: number;
  /** How long a worker keeps renewing one item: at least the longest call chain of one work item. */
  workerMaxHoldMs: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function decodeKey(value: string, name: string): Buffer {
  const key = Buffer.from(value, 'base64');
  if (key.length !== 32) throw new ConfigError(`${name}: must be 32 bytes, base64-encoded (got ${key.length} bytes)`);
  return key;
}

/** The environment as the schema parsed it. */
type ParsedEnv = z.output<typeof envSchema>;

/**
 * The longest one work item can keep calling out: a token poll that fetches the bank's JWKS and a
 * payment call (reconciliation included), each within BANK_TIMEOUT_MS; or one webhook delivery.
 */
function longestCallChainMs(env: ParsedEnv): number {
  return Math.max(3 * env.BANK_TIMEOUT_MS, env.WEBHOOK_TIMEOUT_MS);
}

function parseHostPort(node: string): { host: string; port: number } {
  const at = node.lastIndexOf(':');
  return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
}

/** Parses an environment into a Config; throws ConfigError with one line naming the first bad variable. */
export function loadConfig(rawEnv: Record<string, string | undefined> = process.env): Config {
  const cleaned = Object.fromEntries(Object.entries(rawEnv).filter(([, v]) => v !== undefined && v !== ''));
  const env = parseEnv(cleaned);
  const tokenEncryptionKeys = env.TOKEN_ENCRYPTION_KEY.split(',').map((k, i) =>
    decodeKey(k.trim(), i === 0 ? 'TOKEN_ENCRYPTION_KEY' : `TOKEN_ENCRYPTION_KEY[${i}]`),
  );
  requireCredentials(env);
  if (env.CIBA_SIGNED_REQUEST && !env.BANK_SIGNING_KEY)
    throw new ConfigError('BANK_SIGNING_KEY: is required when CIBA_SIGNED_REQUEST=true');
  const workerMaxHoldMs = loadWorkerMaxHoldMs(env);
  const trustProxy = parseTrustProxy(env.TRUST_PROXY);
  if ('error' in trustProxy) throw new ConfigError(`TRUST_PROXY: ${trustProxy.error}`);
  if (env.METRICS_PORT !== undefined && env.METRICS_PORT !== 0 && env.METRICS_PORT === env.PORT)
    throw new ConfigError('METRICS_PORT: must differ from PORT (metrics stay off the public port)');
  if ((env.WEBHOOK_URL || env.CALLBACK_ALLOWED_ORIGINS.length > 0) && !env.WEBHOOK_SECRET)
    throw new ConfigError('WEBHOOK_SECRET: is required when WEBHOOK_URL or CALLBACK_ALLOWED_ORIGINS is set');
  const openBanking = env.BANK_PROFILE === 'uk-openbanking' ? loadOpenBanking(env) : undefined;
  return {
    bankProfile: env.BANK_PROFILE,
    openBanking,
    port: env.PORT,
    publicBaseUrl: (env.PUBLIC_BASE_URL ?? `http://127.0.0.1:${env.PORT}`).replace(/\/$/, ''),
    role: env.ROLE,
    logLevel: env.LOG_LEVEL,
    shopApiKey: env.SHOP_API_KEY,
    storefrontOrigin: env.STOREFRONT_ORIGIN,
    storefrontEnabled: env.STOREFRONT_ENABLED,
    trustProxy: trustProxy.value,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    ...loadRedis(env),
    tokenEncryptionKeys,
    paymentRetentionSeconds: env.PAYMENT_RETENTION_HOURS * 3600,
    catalogFile: env.CATALOG_FILE,
    currency: env.CURRENCY,
    merchantName: env.MERCHANT_NAME,
    merchantIban: env.MERCHANT_IBAN,
    bank: loadBank(env),
    ciba: {
      deliveryMode: env.CIBA_DELIVERY_MODE,
      scope: env.CIBA_SCOPE,
      requestedExpiry: env.CIBA_REQUESTED_EXPIRY,
      signedRequest: env.CIBA_SIGNED_REQUEST,
      requireGrantedDetails: env.CIBA_REQUIRE_GRANTED_DETAILS,
    },
    webhooks: loadWebhooks(env),
    limits: loadLimits(env),
    sse: { maxStreamsPerPayment: env.SSE_MAX_STREAMS_PER_PAYMENT, maxStreams: env.SSE_MAX_STREAMS },
    metrics: { token: env.METRICS_TOKEN, port: env.METRICS_PORT },
    workerConcurrency: env.WORKER_CONCURRENCY,
    tracing: parseTracing(cleaned),
    workerLeaseMs: env.WORKER_LEASE_MS,
    workerMaxHoldMs,
  };
}

function parseEnv(cleaned: Record<string, string | undefined>): ParsedEnv {
  const parsed = envSchema.safeParse(cleaned);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const name = issue?.path.join('.') ?? 'environment';
  const message =
    issue?.code === 'invalid_type' && issue.input === undefined ? 'is required' : (issue?.message ?? 'is invalid');
  throw new ConfigError(`${name}: ${message}`);
}

/**
 * Renewal stops after WORKER_MAX_HOLD_MS: stopping earlier than the longest call chain of one item
 * would let a second worker take over work whose bank call is still running.
 */
function loadWorkerMaxHoldMs(env: ParsedEnv): number {
  const workerMaxHoldMs = env.WORKER_MAX_HOLD_MS ?? longestCallChainMs(env) + 10_000;
  if (workerMaxHoldMs < longestCallChainMs(env))
    throw new ConfigError(
      `WORKER_MAX_HOLD_MS: must cover the longest call chain of one work item (token + JWKS + payment call, 3 × BANK_TIMEOUT_MS, and WEBHOOK_TIMEOUT_MS): at least ${longestCallChainMs(env)}`,
    );
  return workerMaxHoldMs;
}

function loadRedis(
  env: ParsedEnv,
): Pick<
  Config,
  'redisUrl' | 'redisClusterNodes' | 'redisPrefix' | 'schedulerShards' | 'redisWait' | 'redisCommandTimeoutMs'
> {
  // WAIT blocks for up to its own timeout: a command timeout below it would fail every money transition.
  if (env.REDIS_COMMAND_TIMEOUT_MS <= env.REDIS_WAIT_TIMEOUT_MS)
    throw new ConfigError('REDIS_COMMAND_TIMEOUT_MS: must be greater than REDIS_WAIT_TIMEOUT_MS');
  return {
    redisUrl: env.REDIS_URL,
    redisClusterNodes: env.REDIS_CLUSTER_NODES ? env.REDIS_CLUSTER_NODES.map(parseHostPort) : null,
    redisPrefix: env.REDIS_PREFIX,
    schedulerShards: env.SCHEDULER_SHARDS ?? (env.REDIS_CLUSTER_NODES ? 16 : 1),
    redisWait: {
      replicas: env.REDIS_WAIT_REPLICAS ?? (env.REDIS_CLUSTER_NODES ? 1 : 0),
      timeoutMs: env.REDIS_WAIT_TIMEOUT_MS,
    },
    redisCommandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
  };
}

function loadBank(env: ParsedEnv): Config['bank'] {
  return {
    issuer: env.BANK_ISSUER.replace(/\/$/, ''),
    apiUrl: env.BANK_API_URL.replace(/\/$/, ''),
    caCertFile: env.BANK_CA_CERT,
    clientId: env.BANK_CLIENT_ID,
    clientAuthMethod: env.BANK_CLIENT_AUTH_METHOD,
    clientCertFile: env.BANK_CLIENT_CERT,
    clientKeyFile: env.BANK_CLIENT_KEY,
    clientPfxFile: env.BANK_CLIENT_PFX,
    clientPfxPassphrase: env.BANK_CLIENT_PFX_PASSPHRASE,
    clientSecret: env.BANK_CLIENT_SECRET,
    signingKeyFile: env.BANK_SIGNING_KEY,
    ...(env.BANK_SIGNING_KID === undefined ? {} : { signingKid: env.BANK_SIGNING_KID }),
    signingAlg: env.BANK_SIGNING_ALG,
    idTokenAlg: env.BANK_ID_TOKEN_ALG,
    maxConnections: env.BANK_MAX_CONNECTIONS,
    pipelining: env.BANK_PIPELINING,
    timeoutMs: env.BANK_TIMEOUT_MS,
  };
}

function loadWebhooks(env: ParsedEnv): Config['webhooks'] {
  return {
    url: env.WEBHOOK_URL,
    secret: env.WEBHOOK_SECRET,
    retryScheduleSeconds: env.WEBHOOK_RETRY_SCHEDULE,
    allowPrivate: env.WEBHOOK_ALLOW_PRIVATE,
    timeoutMs: env.WEBHOOK_TIMEOUT_MS,
    callbackAllowedOrigins: env.CALLBACK_ALLOWED_ORIGINS,
  };
}

function loadLimits(env: ParsedEnv): Config['limits'] {
  return {
    checkoutPerMinute: env.RATE_LIMIT_CHECKOUT_PER_MINUTE,
    loginHintPerMinute: env.RATE_LIMIT_LOGIN_HINT_PER_MINUTE,
    loginHintPerHour: env.RATE_LIMIT_LOGIN_HINT_PER_HOUR,
    loginHintPerDay: env.RATE_LIMIT_LOGIN_HINT_PER_DAY,
    maxPendingPerLoginHint: env.CHECKOUT_MAX_PENDING_PER_LOGIN_HINT,
    denialCooldownSeconds: env.DENIAL_COOLDOWN_SECONDS,
    denialCooldownMaxSeconds: Math.max(env.DENIAL_COOLDOWN_SECONDS, env.DENIAL_COOLDOWN_MAX_SECONDS),
  };
}

/** The UK profile asks for a signed CIBA request (it carries the intent id) and a creditor account. */
function loadOpenBanking(env: ParsedEnv): OpenBankingConfig {
  if (!env.CIBA_SIGNED_REQUEST)
    throw new ConfigError('CIBA_SIGNED_REQUEST: must be true for BANK_PROFILE=uk-openbanking');
  // the CIBA access token is for the payment API (OB CIBA profile: scope "openid payments")
  if (!env.CIBA_SCOPE.split(' ').includes('payments'))
    throw new ConfigError('CIBA_SCOPE: must hold payments for BANK_PROFILE=uk-openbanking (e.g. "openid payments")');
  if (!env.OB_CREDITOR_IDENTIFICATION)
    throw new ConfigError('OB_CREDITOR_IDENTIFICATION: is required for BANK_PROFILE=uk-openbanking');
  if (env.OB_CREDITOR_SCHEME === 'UK.OBIE.SortCodeAccountNumber' && !/^[0-9]{14}$/.test(env.OB_CREDITOR_IDENTIFICATION))
    throw new ConfigError('OB_CREDITOR_IDENTIFICATION: must be the 6-digit sort code and 8-digit account number');
  if (env.OB_JWS_SIGNATURE && !env.OB_JWS_ISS)
    throw new ConfigError('OB_JWS_ISS: is required when OB_JWS_SIGNATURE=true (org-id/software-statement-id)');
  return {
    financialId: env.OB_FINANCIAL_ID,
    jwsSignature: env.OB_JWS_SIGNATURE,
    jwsIssuer: env.OB_JWS_ISS,
    trustAnchor: env.OB_JWS_TAN,
    risk: {
      paymentContextCode: env.OB_RISK_PAYMENT_CONTEXT_CODE,
      merchantCategoryCode: env.OB_RISK_MERCHANT_CATEGORY_CODE,
    },
    creditor: { schemeName: env.OB_CREDITOR_SCHEME, identification: env.OB_CREDITOR_IDENTIFICATION },
  };
}

function parseTracing(env: Record<string, string | undefined>): TracingConfig | null {
  try {
    return parseTracingEnv(env);
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err));
  }
}

/** mTLS always needs a certificate (PEM pair or PKCS#12): the payment API is called over mTLS in every mode. */
function requireCredentials(env: ParsedEnv): void {
  const hasPem = Boolean(env.BANK_CLIENT_CERT && env.BANK_CLIENT_KEY);
  if (!hasPem && !env.BANK_CLIENT_PFX) {
    throw new ConfigError('BANK_CLIENT_CERT: is required (with BANK_CLIENT_KEY), or BANK_CLIENT_PFX');
  }
  if (env.BANK_CLIENT_AUTH_METHOD === 'private_key_jwt' && !env.BANK_SIGNING_KEY) {
    throw new ConfigError('BANK_SIGNING_KEY: is required for BANK_CLIENT_AUTH_METHOD=private_key_jwt');
  }
  if (env.BANK_CLIENT_AUTH_METHOD === 'client_secret_basic' && !env.BANK_CLIENT_SECRET) {
    throw new ConfigError('BANK_CLIENT_SECRET: is required for BANK_CLIENT_AUTH_METHOD=client_secret_basic');
  }
}
