import { AppError } from '../errors.js';
import type { Clock } from '../clock.js';
import { matchesHash, sha256 } from '../crypto/hashing.js';
import type { NotificationStore, PaymentStore, WorkScheduler } from './ports.js';
import { workItem } from './work-items.js';

export interface HandlePingDeps {
  notifications: NotificationStore;
  store: PaymentStore;
  scheduler: WorkScheduler;
  clock: Clock;
}

/** What the bank's ping carried: its bearer token and the body's auth_req_id (null when absent or unreadable). */
export interface Ping {
  notificationToken: string | null;
  authReqId: string | null;
}

/**
 * CIBA ping callback (CIBA Core §10.2): the bank says a result is ready, so the payment's token
 * poll moves to now; the token itself always comes from the token endpoint. The bearer token is
 * looked up by its SHA-256, so no stored secret is compared byte by byte.
 */
export function createHandlePing(deps: HandlePingDeps): (ping: Ping) => Promise<void> {
  return async ({ notificationToken, authReqId }) => {
    const paymentId = notificationToken ? await deps.notifications.find(sha256(notificationToken)) : null;
    if (!paymentId) {
      throw new AppError('invalid_notification_token', 'Unknown client_notification_token.', {
        wwwAuthenticate: 'Bearer error="invalid_token"',
      });
    }
    if (authReqId === null) throw new AppError('invalid_request', 'The notification needs an auth_req_id.');
    // The token names the payment; the auth_req_id must be that payment's own (compared as hashes,
    // in constant time, like every secret here).
    const own = (await deps.store.getPollFields(paymentId)).authReqId;
    if (!own || !matchesHash(authReqId, sha256(own))) {
      throw new AppError('invalid_request', 'The auth_req_id does not belong to this notification token.');
    }
    await deps.scheduler.advance(workItem.poll(paymentId), deps.clock.now());
  };
}
