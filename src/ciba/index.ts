import type { Dispatcher } from 'undici';
import { systemClock, type Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { startBackchannelAuthentication, type BackchannelDeps } from './backchannel.js';
import {
  createClientAuthentication,
  loadSigningKey,
  type ClientAuthentication,
  type SigningKey,
} from './client-auth.js';
import { createDiscovery, type BankMetadata } from './discovery.js';
import { createJwksCache } from './id-token.js';
import { createTokenRequester, validateReceivedToken } from './token-grant.js';
import { BackchannelError, type CibaClient, type TokenExpectation, type TokenOutcome } from './types.js';

export * from './types.js';
export { createBankAgent } from './bank-agent.js';

export interface CibaClientDeps {
  config: Pick<Config, 'bank' | 'ciba'>;
  /** The shared bank Agent (see createBankAgent); its owner closes it, not this client. */
  agent: Dispatcher;
  clock?: Clock;
  logger?: Logger;
}

/**
 * The consumption-device side of CIBA: discovery, the backchannel request and the token poll,
 * wired over one mTLS Agent. Nothing is fetched until first use or `ensureDiscovered()`.
 * @see https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html
 */
export function createCibaClient(deps: CibaClientDeps): CibaClient {
  const { config, agent, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const discovery = createDiscovery({ config, agent });
  const jwks = createJwksCache({ agent, clock, getJwksUri: async () => (await discovery.getMetadata()).jwksUri });
  const credentials = memoize(async () => {
    const file = config.bank.signingKeyFile;
    const signingKey: SigningKey | undefined = file
      ? await loadSigningKey(file, config.bank.signingAlg, config.bank.signingKid)
      : undefined;
    const clientAuth: ClientAuthentication = createClientAuthentication({ bank: config.bank, signingKey, clock });
    return { signingKey, clientAuth };
  });
  let ready = false;
  let requestTokenNow: ((expect: TokenExpectation) => Promise<TokenOutcome>) | undefined;

  const getMetadata = async (): Promise<BankMetadata> => {
    try {
      return await discovery.getMetadata();
    } catch (err) {
      logger?.warn({ err }, 'bank discovery failed');
      throw err;
    }
  };

  return {
    async ensureDiscovered() {
      await getMetadata();
      await jwks.load();
      ready = true;
    },
    isReady: () => ready,
    async startBackchannelAuthentication(input) {
      const metadata = await getMetadata().catch(() => {
        throw new BackchannelError('bank_unavailable', 'bank metadata unavailable');
      });
      const backchannelDeps: BackchannelDeps = { config, agent, clock, ...(await credentials()) };
      try {
        return await startBackchannelAuthentication(backchannelDeps, metadata, input);
      } catch (err) {
        if (err instanceof BackchannelError) {
          logger?.warn({ code: err.code, bankError: err.bankError?.error }, 'backchannel authentication refused');
        }
        throw err;
      }
    },
    async requestToken(expect) {
      if (!requestTokenNow) {
        try {
          const metadata = await getMetadata();
          const { clientAuth } = await credentials();
          requestTokenNow = createTokenRequester({ config, agent, clock, clientAuth, jwks }, metadata);
        } catch {
          return { kind: 'retry', reason: 'discovery_unavailable' };
        }
      }
      return requestTokenNow(expect);
    },
    validateReceivedToken: (response, expect) => validateReceivedToken({ config, jwks }, response, expect),
    close: () => Promise.resolve(),
  };
}

/** Runs `fn` once and shares its promise; a rejection is forgotten so a later call tries again. */
export function memoize<T>(fn: () => Promise<T>): () => Promise<T> {
  let promise: Promise<T> | undefined;
  return () => {
    promise ??= fn().catch((err: unknown) => {
      promise = undefined;
      throw err;
    });
    return promise;
  };
}
