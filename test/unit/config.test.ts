import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from '../../src/config.js';

const KEY = randomBytes(32).toString('base64');
const SECRET = `whsec_${randomBytes(24).toString('base64')}`;

/** The least a valid environment holds. */
const BASE: Record<string, string> = {
  TOKEN_ENCRYPTION_KEY: KEY,
  BANK_ISSUER: 'https://bank.example/',
  BANK_API_URL: 'https://bank.example/api/',
  BANK_CA_CERT: 'ca.pem',
  BANK_CLIENT_ID: 'shop',
  BANK_CLIENT_CERT: 'client.pem',
  BANK_CLIENT_KEY: 'client.key',
};

function without(...names: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(BASE).filter(([name]) => !names.includes(name)));
}

function configError(env: Record<string, string | undefined>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  test('when REDIS_COMMAND_TIMEOUT_MS would cut WAIT short, then it is refused with one line', () => {
    expect(configError({ ...BASE, REDIS_COMMAND_TIMEOUT_MS: '100', REDIS_WAIT_TIMEOUT_MS: '100' })).toBe(
      'REDIS_COMMAND_TIMEOUT_MS: must be greater than REDIS_WAIT_TIMEOUT_MS',
    );
    expect(loadConfig({ ...BASE, REDIS_COMMAND_TIMEOUT_MS: '750' }).redisCommandTimeoutMs).toBe(750);
  });

  test('when only the required variables are set, then the defaults apply', () => {
    const config = loadConfig(BASE);
    expect(config).toMatchObject({
      port: 3000,
      publicBaseUrl: 'http://127.0.0.1:3000',
      role: 'all',
      logLevel: 'info',
      redisUrl: 'redis://127.0.0.1:6379',
      redisPrefix: 'ciba:',
      paymentRetentionSeconds: 720 * 3600,
      catalogFile: 'catalog.json',
      currency: 'eur',
      workerLeaseMs: 6000,
      workerMaxHoldMs: 40_000,
      redisCommandTimeoutMs: 2000,
      storefrontEnabled: true,
      trustProxy: false,
    });
    expect(config.bank).toMatchObject({
      issuer: 'https://bank.example',
      apiUrl: 'https://bank.example/api',
      clientAuthMethod: 'tls_client_auth',
      signingAlg: 'PS256',
      timeoutMs: 10_000,
    });
    expect(config.ciba).toEqual({
      deliveryMode: 'poll',
      scope: 'openid profile',
      requestedExpiry: 200,
      signedRequest: false,
      requireGrantedDetails: true,
    });
    expect(config.webhooks).toMatchObject({
      url: undefined,
      secret: undefined,
      allowPrivate: false,
      callbackAllowedOrigins: [],
      retryScheduleSeconds: [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400],
    });
    expect(config.tokenEncryptionKeys).toEqual([Buffer.from(KEY, 'base64')]);
  });

  test('when values are given, then they are parsed and typed', () => {
    const config = loadConfig({
      ...BASE,
      PORT: '8080',
      STOREFRONT_ENABLED: 'no',
      TRUST_PROXY: '1',
      CALLBACK_ALLOWED_ORIGINS: ' https://a.example , https://b.example,',
      WEBHOOK_URL: 'https://shop.example/hooks',
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_RETRY_SCHEDULE: '0,10,10,60',
    });
    expect(config.port).toBe(8080);
    expect(config.storefrontEnabled).toBe(false);
    expect(config.trustProxy).toBe(1);
    expect(config.webhooks.callbackAllowedOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(config.webhooks.retryScheduleSeconds).toEqual([0, 10, 10, 60]);
  });

  test('when an empty string is set, then it counts as unset (the default applies)', () => {
    expect(loadConfig({ ...BASE, PORT: '' }).port).toBe(3000);
  });

  test('when BANK_ISSUER is missing, then the one line names it', () => {
    expect(configError(without('BANK_ISSUER'))).toBe('BANK_ISSUER: is required');
  });

  test('when BANK_ISSUER is not a URL, then the one line names it', () => {
    expect(configError({ ...BASE, BANK_ISSUER: 'bank.example' })).toMatch(/^BANK_ISSUER: /);
  });

  test.each([16, 31, 33, 64])('when TOKEN_ENCRYPTION_KEY is %i bytes, then it is refused with the length', (bytes) => {
    expect(configError({ ...BASE, TOKEN_ENCRYPTION_KEY: randomBytes(bytes).toString('base64') })).toBe(
      `TOKEN_ENCRYPTION_KEY: must be 32 bytes, base64-encoded (got ${bytes} bytes)`,
    );
  });

  test('when a rotated-out key is bad, then the line names its position', () => {
    const value = `${KEY},${randomBytes(8).toString('base64')}`;
    expect(configError({ ...BASE, TOKEN_ENCRYPTION_KEY: value })).toMatch(
      /^TOKEN_ENCRYPTION_KEY\[1\]: must be 32 bytes/,
    );
  });

  test('when two keys are given, then the first seals and both are kept', () => {
    const old = randomBytes(32).toString('base64');
    expect(loadConfig({ ...BASE, TOKEN_ENCRYPTION_KEY: `${KEY}, ${old}` }).tokenEncryptionKeys).toEqual([
      Buffer.from(KEY, 'base64'),
      Buffer.from(old, 'base64'),
    ]);
  });

  test('when CIBA_SCOPE lacks openid, then it is refused', () => {
    expect(configError({ ...BASE, CIBA_SCOPE: 'profile payments' })).toBe('CIBA_SCOPE: must hold openid');
  });

  test('when CIBA_SCOPE only contains openid as part of a word, then it is refused', () => {
    expect(configError({ ...BASE, CIBA_SCOPE: 'openidx profile' })).toBe('CIBA_SCOPE: must hold openid');
  });

  test('when private_key_jwt is chosen without BANK_SIGNING_KEY, then the line names BANK_SIGNING_KEY', () => {
    expect(configError({ ...BASE, BANK_CLIENT_AUTH_METHOD: 'private_key_jwt' })).toMatch(
      /^BANK_SIGNING_KEY: is required/,
    );
    expect(
      loadConfig({ ...BASE, BANK_CLIENT_AUTH_METHOD: 'private_key_jwt', BANK_SIGNING_KEY: 'signing.pem' }).bank
        .signingKeyFile,
    ).toBe('signing.pem');
  });

  test('when client_secret_basic is chosen without BANK_CLIENT_SECRET, then the line names it', () => {
    expect(configError({ ...BASE, BANK_CLIENT_AUTH_METHOD: 'client_secret_basic' })).toMatch(
      /^BANK_CLIENT_SECRET: is required/,
    );
  });

  test('when no client certificate is given, then the line names BANK_CLIENT_CERT', () => {
    const env = without('BANK_CLIENT_CERT', 'BANK_CLIENT_KEY');
    expect(configError(env)).toMatch(/^BANK_CLIENT_CERT: is required/);
    expect(loadConfig({ ...env, BANK_CLIENT_PFX: 'client.pfx' }).bank.clientPfxFile).toBe('client.pfx');
  });

  test('when WEBHOOK_URL is set without a secret, then the line names WEBHOOK_SECRET', () => {
    expect(configError({ ...BASE, WEBHOOK_URL: 'https://shop.example/hooks' })).toMatch(/^WEBHOOK_SECRET: is required/);
  });

  test('when CALLBACK_ALLOWED_ORIGINS is set without a secret, then the line names WEBHOOK_SECRET', () => {
    expect(configError({ ...BASE, CALLBACK_ALLOWED_ORIGINS: 'https://shop.example' })).toMatch(/^WEBHOOK_SECRET: /);
  });

  test('when WEBHOOK_SECRET is not whsec_ base64, then it is refused', () => {
    expect(configError({ ...BASE, WEBHOOK_SECRET: 'plain-secret-value-123' })).toBe(
      'WEBHOOK_SECRET: must be whsec_ followed by base64',
    );
  });

  test('when WEBHOOK_RETRY_SCHEDULE decreases, then it is refused', () => {
    expect(configError({ ...BASE, WEBHOOK_RETRY_SCHEDULE: '0,60,30' })).toBe(
      'WEBHOOK_RETRY_SCHEDULE: offsets from the first attempt must not decrease',
    );
  });

  test('when WEBHOOK_RETRY_SCHEDULE is not numbers, then it is refused', () => {
    expect(configError({ ...BASE, WEBHOOK_RETRY_SCHEDULE: '0,5m' })).toBe(
      'WEBHOOK_RETRY_SCHEDULE: seconds, comma-separated',
    );
  });

  test('when the lease renewal stops before the longest call chain ends, then it is refused', () => {
    expect(configError({ ...BASE, WORKER_MAX_HOLD_MS: '29999', BANK_TIMEOUT_MS: '10000' })).toBe(
      'WORKER_MAX_HOLD_MS: must cover the longest call chain of one work item (token + JWKS + payment call, 3 × BANK_TIMEOUT_MS, and WEBHOOK_TIMEOUT_MS): at least 30000',
    );
    expect(loadConfig({ ...BASE, WORKER_LEASE_MS: '5000', BANK_TIMEOUT_MS: '10000' }).workerMaxHoldMs).toBe(40_000);
  });

  test('when CIBA_SIGNED_REQUEST is on without a signing key, then the line names BANK_SIGNING_KEY', () => {
    expect(configError({ ...BASE, CIBA_SIGNED_REQUEST: 'true' })).toMatch(/^BANK_SIGNING_KEY: /);
  });

  test.each([
    ['PORT', '70000'],
    ['ROLE', 'cron'],
    ['REDIS_PREFIX', 'has space'],
    ['STOREFRONT_ENABLED', 'maybe'],
  ])('when %s=%s, then the line names it', (name, value) => {
    expect(configError({ ...BASE, [name]: value })).toMatch(new RegExp(`^${name}: `));
  });
});

describe('loadConfig, BANK_PROFILE=uk-openbanking', () => {
  const UK: Record<string, string> = {
    ...BASE,
    BANK_PROFILE: 'uk-openbanking',
    CIBA_SIGNED_REQUEST: 'true',
    CIBA_SCOPE: 'openid payments',
    BANK_SIGNING_KEY: 'signing.key',
    OB_JWS_ISS: 'org/ssa',
    OB_CREDITOR_IDENTIFICATION: '40400411290112',
  };

  test('when unset, then the sandbox profile applies and no Open Banking settings exist', () => {
    expect(loadConfig(BASE)).toMatchObject({ bankProfile: 'sandbox', openBanking: undefined });
  });

  test('when the profile is complete, then its settings and defaults are typed', () => {
    expect(loadConfig({ ...UK, BANK_SIGNING_KID: 'kid-1', OB_FINANCIAL_ID: '0015800001041RHAAY' })).toMatchObject({
      bankProfile: 'uk-openbanking',
      bank: { signingKid: 'kid-1' },
      openBanking: {
        financialId: '0015800001041RHAAY',
        jwsSignature: true,
        jwsIssuer: 'org/ssa',
        trustAnchor: 'openbanking.org.uk',
        risk: { paymentContextCode: 'EcommerceGoods', merchantCategoryCode: undefined },
        creditor: { schemeName: 'UK.OBIE.SortCodeAccountNumber', identification: '40400411290112' },
      },
    });
  });

  test.each([
    [{ CIBA_SIGNED_REQUEST: 'false' }, /^CIBA_SIGNED_REQUEST: must be true/],
    [{ CIBA_SCOPE: 'openid' }, /^CIBA_SCOPE: must hold payments/],
    [{ OB_CREDITOR_IDENTIFICATION: '' }, /^OB_CREDITOR_IDENTIFICATION: is required/],
    [{ OB_CREDITOR_IDENTIFICATION: '404004112901' }, /^OB_CREDITOR_IDENTIFICATION: must be the 6-digit sort code/],
    [{ OB_JWS_ISS: '' }, /^OB_JWS_ISS: is required when OB_JWS_SIGNATURE=true/],
    [{ OB_RISK_PAYMENT_CONTEXT_CODE: 'Gambling' }, /^OB_RISK_PAYMENT_CONTEXT_CODE: /],
    [{ BANK_PROFILE: 'psd2-berlin' }, /^BANK_PROFILE: /],
  ])('when %j, then the one line names the variable', (change, message) => {
    expect(configError({ ...UK, ...change })).toMatch(message);
  });

  test('when the creditor is an IBAN and no JWS is wanted, then neither sort code nor OB_JWS_ISS is asked for', () => {
    const config = loadConfig({
      ...UK,
      OB_CREDITOR_SCHEME: 'UK.OBIE.IBAN',
      OB_CREDITOR_IDENTIFICATION: 'GB29NWBK60161331926819',
      OB_JWS_SIGNATURE: 'false',
      OB_JWS_ISS: '',
    });
    expect(config.openBanking?.creditor.schemeName).toBe('UK.OBIE.IBAN');
  });
});
