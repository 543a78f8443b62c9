import { randomBytes } from 'node:crypto';
import type { DevCertificates } from '../../src/sandbox/certs.js';
import { testStoreEnv } from './redis.js';

/**
 * The environment of a test service against the given bank and Redis prefix: every test harness
 * (in-process, child processes, conformance, webhooks) starts from this and adds its own `extra`.
 */
export function serviceEnv(options: {
  bank: { issuer: string; apiUrl: string };
  certs: Pick<DevCertificates, 'caCert' | 'clientCert' | 'clientKey'>;
  prefix: string;
  clientId?: string;
  redisUrl?: string;
  extra?: Record<string, string>;
}): Record<string, string> {
  return {
    LOG_LEVEL: 'info',
    ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : testStoreEnv()),
    REDIS_PREFIX: options.prefix,
    TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    SHOP_API_KEY: `sk_test_${randomBytes(16).toString('hex')}`,
    CATALOG_FILE: 'catalog.json',
    BANK_ISSUER: options.bank.issuer,
    BANK_API_URL: options.bank.apiUrl,
    BANK_CA_CERT: options.certs.caCert,
    BANK_CLIENT_ID: options.clientId ?? 'cibaConformance',
    BANK_CLIENT_CERT: options.certs.clientCert,
    BANK_CLIENT_KEY: options.certs.clientKey,
    CIBA_DELIVERY_MODE: 'poll',
    CIBA_REQUESTED_EXPIRY: '60',
    RATE_LIMIT_CHECKOUT_PER_MINUTE: '0',
    RATE_LIMIT_LOGIN_HINT_PER_MINUTE: '0',
    // Push-bombing limits off, so suites may start many payments for one customer; their own test turns them on.
    RATE_LIMIT_LOGIN_HINT_PER_HOUR: '0',
    RATE_LIMIT_LOGIN_HINT_PER_DAY: '0',
    CHECKOUT_MAX_PENDING_PER_LOGIN_HINT: '0',
    DENIAL_COOLDOWN_SECONDS: '0',
    STOREFRONT_ENABLED: 'false',
    ...options.extra,
  };
}
