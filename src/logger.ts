import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Paths that must never reach a log: bearer tokens, client secrets, auth_req_ids, notification tokens.
 * Redaction is the safety net; code also avoids logging these in the first place.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["idempotency-key"]',
  'res.headers["set-cookie"]',
  '*.authorization',
  '*.access_token',
  '*.accessToken',
  '*.id_token',
  '*.idToken',
  '*.refresh_token',
  '*.auth_req_id',
  '*.authReqId',
  '*.client_secret',
  '*.clientSecret',
  '*.client_notification_token',
  '*.clientNotificationToken',
  '*.password',
  // The same names at the top level of a log object (`*.x` matches one level down only).
  'authorization',
  'access_token',
  'accessToken',
  'id_token',
  'idToken',
  'auth_req_id',
  'authReqId',
  'client_secret',
  'clientSecret',
  'client_notification_token',
  'clientNotificationToken',
  // ioredis attaches the failed command to its errors; its arguments can hold any stored secret.
  'err.command',
  '*.err.command',
  // A failed MULTI carries each queued command's error, arguments included.
  'err.previousErrors[*].command',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'ciba-checkout' } };
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options);
}
