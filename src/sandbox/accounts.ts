import type { Configuration } from 'oidc-provider';
import { INTENT_ID_CLAIM, requestedIntentId } from './open-banking/ob-ciba.js';

/** The sandbox bank's customers: who may be named as login_hint and sign in to the bank app. */
export interface SandboxUser {
  login: string;
  password: string;
  name: string;
  iban: string;
}

export const DEFAULT_USERS: SandboxUser[] = [
  { login: 'user', password: 'password', name: 'Demo User', iban: 'DE02120300000000202051' },
];

/** The account and token claims of a grant: `sub`, `name`, and the consent it authorised (OB CIBA profile). */
export function accountClaimHooks(
  users: ReadonlyMap<string, SandboxUser>,
): Pick<Configuration, 'findAccount' | 'extraTokenClaims'> {
  return {
    findAccount(ctx, sub) {
      const user = users.get(sub);
      if (user === undefined) return undefined;
      // the consent this grant authorised, for the ID token's openbanking_intent_id
      const intentId = requestedIntentId(ctx.oidc.entities.BackchannelAuthenticationRequest?.claims);
      return {
        accountId: user.login,
        claims: () => ({ sub: user.login, name: user.name, ...(intentId ? { [INTENT_ID_CLAIM]: intentId } : {}) }),
      };
    },
    extraTokenClaims(ctx) {
      // the access token names its consent, so the payment API takes it for that consent only
      const intentId = requestedIntentId(ctx.oidc.entities.BackchannelAuthenticationRequest?.claims);
      return intentId ? { [INTENT_ID_CLAIM]: intentId } : undefined;
    },
  };
}
