import { Router } from 'express';
import { AppError } from '../errors.js';
import { matchesHash, sha256 } from '../crypto/hashing.js';
import { workItem } from '../payments/state-machine.js';
import type { NotificationStore } from '../store/notification-store.js';
import type { PaymentStore } from '../store/payment-store.js';
import type { Scheduler } from '../jobs/scheduler.js';
import type { Clock } from '../clock.js';
import { headerBearer } from './bearer.js';
import { notifyRequestSchema } from './schemas.js';
import { documented, type OpenApiBuilder } from './openapi-builder.js';

/**
 * CIBA ping callback (CIBA Core §10.2): the bank tells us a result is ready. We answer 204 at once
 * and move the payment's poll to now; the token itself is always fetched from the token endpoint.
 * The bearer token is looked up by its SHA-256, so no stored secret is compared byte by byte.
 * Errors are plain 401/400 (never a redirect, §10.2).
 */
export function createCibaNotifyRoute(deps: {
  notifications: NotificationStore;
  store: PaymentStore;
  scheduler: Scheduler;
  clock: Clock;
}): Router {
  const router = Router();
  router.post('/ciba/notify', async (req, res) => {
    const token = headerBearer(req);
    const paymentId = token ? await deps.notifications.find(sha256(token)) : null;
    if (!paymentId) {
      res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw new AppError('invalid_notification_token', 'Unknown client_notification_token.');
    }
    const body = notifyRequestSchema.safeParse(req.body);
    if (!body.success) throw new AppError('invalid_request', 'The notification needs an auth_req_id.');
    // The token names the payment; the auth_req_id must be that payment's own (compared as hashes,
    // in constant time, like every secret here).
    const { authReqId } = await deps.store.getPollFields(paymentId);
    if (!authReqId || !matchesHash(body.data.auth_req_id, sha256(authReqId))) {
      throw new AppError('invalid_request', 'The auth_req_id does not belong to this notification token.');
    }
    if (await deps.scheduler.advance(workItem.poll(paymentId), deps.clock.now())) await deps.scheduler.wake();
    res.status(204).end();
  });
  return router;
}

/** The OpenAPI operations of the route above, declared beside it so both change together. */
export function documentCibaNotifyRoute(b: OpenApiBuilder): void {
  b.route({
    method: 'post',
    path: '/ciba/notify',
    tags: ['Bank'],
    summary: 'CIBA ping notification',
    description:
      'The bank calls this in ping mode when a result is ready (CIBA Core §10.2). Answers `204` and fetches the token at once; ' +
      'the token itself always comes from the token endpoint.',
    security: [{ notificationToken: [] }],
    request: {
      body: {
        required: true,
        content: b.content('POST /ciba/notify request', documented(notifyRequestSchema).openapi('CibaNotification'), {
          ping: { summary: 'A result is ready', value: { auth_req_id: '1c266114-a1be-4252-8ad1-04986c5b9ac1' } },
        }),
      },
    },
    responses: {
      204: { description: 'Noted; the token request follows immediately.' },
      ...b.problems('POST /ciba/notify', [
        'invalid_request',
        'malformed_json',
        'body_too_large',
        'invalid_notification_token',
        'store_unavailable',
      ]),
    },
  });
}
