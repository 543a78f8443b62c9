import type { Dispatcher } from 'undici';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { sandboxBankProfile, type BankProfile } from '../payments/bank-profile.js';
import { createBankClient } from './payment-client.js';
import type { BankClient } from './types.js';
import { createUkOpenBankingBank } from './uk-openbanking/uk-bank-client.js';

/**
 * BANK_PROFILE → the bank client behind the BankClient seam and its checkout-time profile:
 * `sandbox` (DESIGN.md payment API, RFC 9396 authorization_details) or `uk-openbanking`
 * (Open Banking UK v3.1.10 domestic payments, src/bank/uk-openbanking).
 */
export function createBank(deps: { config: Config; agent: Dispatcher; clock: Clock }): {
  client: BankClient;
  profile: BankProfile;
} {
  const { config, agent, clock } = deps;
  if (config.bankProfile === 'uk-openbanking' && config.openBanking) {
    return createUkOpenBankingBank({ config: { ...config, openBanking: config.openBanking }, agent, clock });
  }
  return { client: createBankClient({ config, agent, clock }), profile: sandboxBankProfile };
}
