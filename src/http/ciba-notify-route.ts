import { Router } from 'express';
import type { Ping } from '../payments/handle-ping.js';
import { headerBearer } from './bearer.js';
import { notifyRequestSchema } from './schemas.js';
import { documented, type OpenApiBuilder } from './openapi-builder.js';

/**
 * CIBA ping callback (CIBA Core §10.2, payments/handle-ping.ts): answers 204 at once. Errors are
 * plain 401/400 (never a redirect, §10.2).
 */
export function createCibaNotifyRoute(deps: { handlePing: (ping: Ping) => Promise<void> }): Router {
  const router = Router();
  router.post('/ciba/notify', async (req, res) => {
    const body = notifyRequestSchema.safeParse(req.body);
    await deps.handlePing({
      notificationToken: headerBearer(req),
      authReqId: body.success ? body.data.auth_req_id : null,
    });
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
