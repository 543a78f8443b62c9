/**
 * The error codes a token endpoint may answer (CIBA Core §11, RFC 6749 §5.2). In the kernel because
 * both the CIBA client (which maps anything else to `other`) and the metrics' label allow-list read it.
 */
export const TOKEN_ERROR_CODES = [
  'authorization_pending',
  'slow_down',
  'expired_token',
  'access_denied',
  'invalid_grant',
  'invalid_request',
  'invalid_client',
  'unauthorized_client',
  'unsupported_grant_type',
] as const;
