import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { AuthorizationDetail } from 'oidc-provider';
import type { AuthenticationRequestRecord, RequestStore } from './requests.js';
import { INTENT_ID_CLAIM, requestedIntentId } from './open-banking/ob-ciba.js';
import type { ObResources } from './open-banking/ob-resources.js';

/**
 * The customer's decision on a backchannel request, from the bank app, SandboxBank.approve/deny or
 * an automatic decision: first the request record (the first decision wins), then the consent of
 * an Open Banking request, then the OP's backchannel result (CIBA Core §11).
 */
export type Decision = 'approve' | 'deny';

export interface DecisionDeps {
  requests: RequestStore;
  obResources: ObResources;
  /** The OP, once built (decisions only come after start-up). */
  provider: () => Provider | undefined;
  log: (line: string) => void;
}

/** Returns false when the request is unknown or no longer pending. */
export type Decide = (id: string, asked: Decision) => Promise<boolean>;

export function createDecide(deps: DecisionDeps): Decide {
  return async (id, asked) => {
    const record = await deps.requests.get(id);
    const provider = deps.provider();
    if (record === undefined || provider === undefined) return false;
    const decision = await decideConsent(deps.obResources, record, asked);
    if (!(await deps.requests.decide(id, decision === 'approve' ? 'approved' : 'denied'))) return false;
    try {
      await settleBackchannelRequest(provider, record, decision);
    } catch (error) {
      // The decision stands; a failed ping (CIBA Core §10.2) leaves the shop to its safety-net poll.
      deps.log(`[bank] could not complete request ${id}: ${error instanceof Error ? error.message : 'unknown error'}`);
    }
    deps.log(`[bank] user "${record.login}" ${decision === 'approve' ? 'approved' : 'denied'} request ${id}`);
    return true;
  };
}

/** Approves with a grant for the request's scope, resource and authorization_details, or denies. */
async function settleBackchannelRequest(
  provider: Provider,
  record: AuthenticationRequestRecord,
  decision: Decision,
): Promise<void> {
  const request = await provider.BackchannelAuthenticationRequest.find(record.authReqId, { ignoreExpiration: true });
  if (request === undefined) throw new Error('backchannel request not found (expired long ago?)');
  if (decision === 'deny') {
    // CIBA Core §11: the token endpoint then answers access_denied.
    await provider.backchannelResult(request, new errors.AccessDenied('the customer denied the request'));
    return;
  }
  const grant = new provider.Grant({ accountId: record.login, clientId: record.clientId });
  if (request.scope !== undefined) grant.addOIDCScope(request.scope);
  if (requestedIntentId(request.claims) !== undefined) grant.addOIDCClaims([INTENT_ID_CLAIM]);
  const resources = request.resource === undefined ? [] : [request.resource].flat();
  for (const resource of resources) grant.addResourceScope(resource, 'payments');
  const raw = request.params?.authorization_details;
  // RFC 9396 §7: what the customer approved is what the access token carries.
  const rar = typeof raw === 'string' ? (JSON.parse(raw) as AuthorizationDetail[]) : undefined;
  for (const detail of rar ?? []) grant.addRar(detail);
  await grant.save();
  await provider.backchannelResult(request, grant, {
    authTime: Math.floor(Date.now() / 1000),
    amr: ['pwd'],
    ...(rar === undefined ? {} : { rar }),
  });
}

/**
 * An Open Banking request decides its consent first: approval authorises it (AwaitingAuthorisation →
 * Authorised), denial rejects it. A consent that can no longer be authorised (expired, already
 * decided) turns an approval into a denial, so no token is issued for it.
 */
async function decideConsent(
  resources: ObResources,
  record: AuthenticationRequestRecord,
  decision: Decision,
): Promise<Decision> {
  if (record.consentId === undefined) return decision;
  if (decision === 'deny') {
    await resources.decideConsent(record.consentId, 'Rejected');
    return 'deny';
  }
  return (await resources.decideConsent(record.consentId, 'Authorised')) ? 'approve' : 'deny';
}

/** Scripted demos and tests: every new request decided by itself after a delay; cancelled on close. */
export interface AutoDecisions {
  schedule(record: AuthenticationRequestRecord): void;
  cancelAll(): void;
}

export function createAutoDecisions(decision: Decision | undefined, delayMs: number, decide: Decide): AutoDecisions {
  const timers = new Set<NodeJS.Timeout>();
  return {
    schedule(record) {
      if (decision === undefined) return;
      const timer = setTimeout(() => {
        timers.delete(timer);
        decide(record.id, decision).catch(() => undefined);
      }, delayMs);
      timers.add(timer);
    },
    cancelAll() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}
