import { errors } from 'oidc-provider';
import type {
  Account,
  BackchannelAuthenticationRequest,
  CIBAEnabledConfiguration,
  Client,
  KoaContextWithOIDC,
} from 'oidc-provider';
import type { SandboxUser } from './accounts.js';
import { paymentInitiationSchema, type PaymentInitiation } from './payment-details.js';
import { startPollPacing, type PollPacingDeps } from './poll-pacing.js';
import type { AuthenticationRequestRecord, RequestStore } from './requests.js';
import { bindableConsent, requestedIntentId } from './open-banking/ob-ciba.js';
import type { Consent, ObResources } from './open-banking/ob-resources.js';

/**
 * The CIBA hooks of the sandbox OP (features.ciba): who may be asked (login_hint), what a request
 * may say (binding_message, an Open Banking consent), and what happens when one is accepted — the
 * record the phone shows, the poll pacing, the console line and the push.
 */
export interface CibaHookDeps extends PollPacingDeps {
  appUrl: string;
  requests: RequestStore;
  users: ReadonlyMap<string, SandboxUser>;
  /** Merchant names per client id, shown on the phone. */
  clientNames: ReadonlyMap<string, string>;
  /** Seconds advertised as `interval` (CIBA Core §7.3). */
  interval: number;
  /** The Open Banking consents a CIBA request may name as openbanking_intent_id. */
  obResources: ObResources;
  log: (line: string) => void;
  onNewRequest: (record: AuthenticationRequestRecord) => void;
}

/** CIBA Core §7.1.1 leaves binding_message to the OP; the shop sends short codes like "K7P2-QX". */
const BINDING_MESSAGE = /^[A-Z0-9-]{1,20}$/;
/** CIBA Core §7.1: requested_expiry, capped at 10 minutes for the sandbox. */
const MAX_REQUESTED_EXPIRY_SECONDS = 600;
const DEFAULT_EXPIRY_SECONDS = 120;

export function cibaFeature(deps: CibaHookDeps): CIBAEnabledConfiguration {
  return {
    enabled: true,
    deliveryModes: ['poll', 'ping'],
    processLoginHint(_ctx, loginHint) {
      // CIBA Core §13: unknown_user_id, which the shop turns into unknown_bank_user.
      if (loginHint === undefined || !deps.users.has(loginHint))
        throw new errors.UnknownUserId('no customer with this login_hint');
      return loginHint;
    },
    processLoginHintToken() {
      throw new errors.InvalidRequest('login_hint_token is not supported; use login_hint');
    },
    validateBindingMessage(_ctx, bindingMessage) {
      if (bindingMessage !== undefined && !BINDING_MESSAGE.test(bindingMessage)) {
        throw new errors.InvalidBindingMessage('binding_message must be 1 to 20 characters of A-Z, 0-9 and -');
      }
    },
    async validateRequestContext(ctx) {
      const intentId = requestedIntentId(ctx.oidc.params?.claims);
      const clientId = ctx.oidc.client?.clientId;
      if (intentId !== undefined && clientId !== undefined) await bindableConsent(deps.obResources, clientId, intentId);
    },
    verifyUserCode(_ctx, _account, userCode) {
      if (userCode !== undefined) throw new errors.InvalidRequest('user_code is not supported');
    },
    triggerAuthenticationDevice: (ctx, request, account, client) =>
      announceBackchannelRequest(deps, ctx, request, account, client),
  };
}

/** The backchannel request's lifetime in seconds (ttl.BackchannelAuthenticationRequest). */
export function backchannelRequestTtl(ctx: KoaContextWithOIDC): number {
  const requested = Number(ctx.oidc.params?.requested_expiry);
  return Number.isSafeInteger(requested) && requested > 0
    ? Math.min(requested, MAX_REQUESTED_EXPIRY_SECONDS)
    : DEFAULT_EXPIRY_SECONDS;
}

/**
 * An accepted backchannel request (CIBA Core §7.2): stored for the phone, paced for polls, its
 * `interval` added to the answer, announced on the console and pushed.
 */
async function announceBackchannelRequest(
  deps: CibaHookDeps,
  ctx: KoaContextWithOIDC,
  request: BackchannelAuthenticationRequest,
  account: Account,
  client: Client,
): Promise<void> {
  const intentId = requestedIntentId(ctx.oidc.params?.claims);
  const consent = intentId === undefined ? undefined : await deps.obResources.getConsent(intentId);
  const detail = consent ? consentAsDetail(consent) : parsePaymentDetail(ctx.oidc.params?.authorization_details);
  const expiresAtSeconds = request.exp ?? Math.floor(Date.now() / 1000) + request.expiration;
  const record = await deps.requests.create({
    authReqId: request.jti,
    clientId: client.clientId,
    clientName: deps.clientNames.get(client.clientId) ?? client.clientId,
    login: account.accountId,
    bindingMessage: typeof ctx.oidc.params?.binding_message === 'string' ? ctx.oidc.params.binding_message : '',
    amount: detail?.instructedAmount.amount ?? '',
    currency: detail?.instructedAmount.currency ?? '',
    creditorName: detail?.creditorName ?? '',
    creditorIban: detail?.creditorAccount.iban ?? '',
    expiresAt: new Date(expiresAtSeconds * 1000).toISOString(),
    ...(consent ? { consentId: consent.consentId } : {}),
  });
  // CIBA Core §7.3: `interval` is the minimum wait between polls; oidc-provider leaves it out.
  await startPollPacing(deps, request.jti, deps.interval, expiresAtSeconds);
  (ctx.body as Record<string, unknown>).interval = deps.interval;
  deps.log(newRequestLine(record, detail !== undefined, deps.appUrl));
  deps.onNewRequest(record);
}

/** The reference tutorial's "console notification"; never the auth_req_id. */
function newRequestLine(record: AuthenticationRequestRecord, hasAmount: boolean, appUrl: string): string {
  const money = hasAmount ? `${record.currency} ${record.amount}` : 'no amount';
  const code = record.bindingMessage === '' ? '' : `, code ${record.bindingMessage}`;
  return (
    `[bank] user "${record.login}" has a new request from ${record.clientName} (${money}${code}): ` +
    `approve at ${appUrl}requests/${record.id}`
  );
}

function parsePaymentDetail(raw: unknown): PaymentInitiation | undefined {
  if (typeof raw !== 'string') return undefined;
  const parsed: unknown = JSON.parse(raw);
  if (!Array.isArray(parsed)) return undefined;
  for (const candidate of parsed as unknown[]) {
    const result = paymentInitiationSchema.safeParse(candidate);
    if (result.success) return result.data;
  }
  return undefined;
}

/** What the phone shows of an Open Banking consent: its amount and creditor. */
function consentAsDetail(
  consent: Consent,
): Pick<PaymentInitiation, 'instructedAmount' | 'creditorName' | 'creditorAccount'> {
  const { InstructedAmount, CreditorAccount } = consent.initiation;
  return {
    instructedAmount: { amount: InstructedAmount.Amount, currency: InstructedAmount.Currency },
    creditorName: CreditorAccount.Name ?? CreditorAccount.Identification,
    creditorAccount: { iban: CreditorAccount.Identification },
  };
}
