import { createHash, createPublicKey, randomBytes, randomUUID, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import {
  SignJWT,
  base64url,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import type { Clock } from '../../src/clock.js';
import type { Config } from '../../src/config.js';
import type { DevCertificates } from '../../src/sandbox/certs.js';

/**
 * A scripted OpenID provider (and a tiny payment API) over real HTTPS with client-certificate
 * checking, for the CIBA and bank client tests and the service-level conformance suite.
 *
 * By default it behaves like a well-mannered bank: discovery with `mtls_endpoint_aliases`, a JWKS,
 * bc-authorize that opens a grant, and a token endpoint that answers from the grant's state, which
 * a test moves with `approve`, `deny` or `expire`. A test changes any answer with
 * `script(endpoint, ...steps)`: each step answers one request to that endpoint, in order, after
 * client authentication has passed. Every request is recorded (`requests`, `requestsTo`).
 */

export type Endpoint =
  'discovery' | 'jwks' | 'backchannel' | 'token' | 'payments' | 'lookup' | 'open-banking' | 'unknown';
export type ClientAuthMethod = Config['bank']['clientAuthMethod'];
export type IdTokenAlg = 'PS256' | 'ES256' | 'RS256';

export interface RecordedRequest {
  endpoint: Endpoint;
  method: string;
  /** Path without query, e.g. `/mtls/token`. */
  path: string;
  /** The query parameters. */
  query: Record<string, string>;
  /** Whether the mTLS alias of the endpoint was used. */
  viaMtlsAlias: boolean;
  /** `clock.now()` when the request had been read. */
  at: number;
  headers: IncomingHttpHeaders;
  rawBody: string;
  /** The form fields of a urlencoded body ({} otherwise). */
  form: Record<string, string>;
  /** The parsed JSON body, if it was JSON. */
  json: unknown;
  clientCert: { subject: string; authorized: boolean; thumbprint: string } | undefined;
  /** The verified client assertion (private_key_jwt) or signed request object, when sent. */
  clientAssertion?: { header: Record<string, unknown>; payload: JWTPayload };
  requestObject?: { header: Record<string, unknown>; payload: JWTPayload };
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** Sent as application/json unless headers say otherwise. */
  json?: unknown;
  /** Sent verbatim (content type from headers, default text/plain). */
  text?: string;
  /** Wait before answering (timeouts). */
  delayMs?: number;
  /** Destroy the socket instead of answering (network fault). */
  hangUp?: boolean;
  /** Answer, then destroy the socket (the connection drops with later pipelined requests unanswered). */
  closeAfter?: boolean;
  /** Payment API: book the transfer (as accepted) whatever this reply says, e.g. then drop the answer. */
  book?: boolean;
}
export type Step = Reply | ((req: RecordedRequest) => Reply | Promise<Reply>);

export interface IdTokenOptions {
  alg?: IdTokenAlg | 'none';
  /** `next` signs with a key that is only published after `rotateKeys()`. */
  key?: 'current' | 'next';
  /** Claim overrides; a value of `undefined` removes the claim. */
  claims?: Record<string, unknown>;
  /** Flip a bit of the signature. */
  tamper?: boolean;
}

export interface Grant {
  authReqId: string;
  loginHint: string;
  bindingMessage: string | undefined;
  authorizationDetails: unknown;
  clientNotificationToken: string | undefined;
  expiresAt: number;
  state: 'pending' | 'approved' | 'denied' | 'expired' | 'consumed';
  /** Used for the success answer once approved. */
  idToken?: IdTokenOptions;
  /** Returned instead of the requested details (mismatch tests); `null` omits them. */
  returnedAuthorizationDetails?: unknown;
  /** The OIDC `claims` request (e.g. Open Banking's openbanking_intent_id), as sent. */
  requestedClaims?: unknown;
}

/** What the OP knows of an access token it issued. */
export interface IssuedToken {
  thumbprint: string | undefined;
  /** `client`: client_credentials; `ciba`: issued for a grant. */
  kind: 'client' | 'ciba';
  scope: string;
  grant?: Grant;
}

export interface PaymentRecord {
  idempotencyKey: string;
  body: unknown;
  reply: Reply;
}

/** A transfer the payment API booked, as the reconciliation lookup lists it. */
export interface Booking {
  bankPaymentId: string;
  idempotencyKey: string;
  endToEndId: string;
}

export interface ScriptedOpOptions {
  certs: DevCertificates;
  clientId?: string;
  clientAuth?: ClientAuthMethod;
  clientSecret?: string;
  idTokenAlg?: IdTokenAlg;
  /** Seconds; what bc-authorize answers. Default 120 and 5. */
  expiresIn?: number;
  interval?: number;
  clock?: Clock;
  /** Answers requests under /api/open-banking/ (the Open Banking UK resources), e.g. test/support/scripted-ob-bank.ts. */
  openBanking?: (req: RecordedRequest, op: ScriptedOp) => Reply | Promise<Reply>;
}

export interface ScriptedOp {
  readonly issuer: string;
  readonly apiUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly certs: DevCertificates;
  /** The discovery document served; tests may edit it. */
  readonly metadata: Record<string, unknown>;
  readonly requests: RecordedRequest[];
  readonly grants: Map<string, Grant>;
  readonly payments: Map<string, PaymentRecord>;
  /** Every transfer booked, in order (what `GET /api/payments?end_to_end_id=` looks in). */
  readonly bookings: Booking[];
  requestsTo(endpoint: Endpoint): RecordedRequest[];
  script(endpoint: Endpoint, ...steps: Step[]): void;
  /** Forgets scripted steps, recorded requests, grants and payments; restores metadata and keys. */
  reset(): void;
  /** Client auth the OP expects from now on. */
  setClientAuth(method: ClientAuthMethod): void;
  lastGrant(): Grant;
  approve(authReqId: string, options?: { idToken?: IdTokenOptions; authorizationDetails?: unknown }): void;
  deny(authReqId: string): void;
  expire(authReqId: string): void;
  /** Publishes the `next` keys in the JWKS (key rotation). */
  rotateKeys(): void;
  signIdToken(options?: IdTokenOptions & { authReqId?: string; sub?: string }): Promise<string>;
  /** A step answering 200 with a token response for the request's auth_req_id. */
  tokenSuccess(options?: {
    idToken?: IdTokenOptions;
    authorizationDetails?: unknown;
    body?: Record<string, unknown>;
  }): Step;
  /** An access token the payment API accepts, bound to the shop's client certificate. */
  createAccessToken(): string;
  /** The access token in a request's Authorization header, when this OP issued it. */
  tokenOf(req: RecordedRequest): IssuedToken | undefined;
  /** Ping mode: POSTs `{auth_req_id}` to the client's notification endpoint with its bearer token. */
  notify(authReqId: string, url: string): Promise<number>;
  /** A `{ bank, ciba }` configuration pointing at this OP. */
  configFor(overrides?: Partial<Config['bank']>, ciba?: Partial<Config['ciba']>): Pick<Config, 'bank' | 'ciba'>;
  close(): Promise<void>;
}

const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';
const AUTH_REQ_ID_CLAIM = 'urn:openid:params:jwt:claim:auth_req_id';
const INTENT_ID_CLAIM = 'openbanking_intent_id';

/** The openbanking_intent_id value a `claims` request asks for (id_token or userinfo). */
export function requestedIntentId(claims: unknown): string | undefined {
  const members = (claims ?? {}) as Record<string, Record<string, { value?: unknown } | undefined> | undefined>;
  const value = members.id_token?.[INTENT_ID_CLAIM]?.value ?? members.userinfo?.[INTENT_ID_CLAIM]?.value;
  return typeof value === 'string' ? value : undefined;
}

interface SigningKeyPair {
  kid: string;
  alg: IdTokenAlg;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function makeKey(alg: IdTokenAlg, kid: string): Promise<SigningKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export async function startScriptedOp(options: ScriptedOpOptions): Promise<ScriptedOp> {
  const clock = options.clock ?? { now: () => Date.now() };
  const clientId = options.clientId ?? 'shop-client';
  const clientSecret = options.clientSecret ?? 'dev-secret with spaces&symbols';
  let clientAuth: ClientAuthMethod = options.clientAuth ?? 'tls_client_auth';
  const idTokenAlg = options.idTokenAlg ?? 'PS256';
  const algs: IdTokenAlg[] = ['PS256', 'ES256', 'RS256'];
  const current = await Promise.all(algs.map((a) => makeKey(a, `op-${a.toLowerCase()}-1`)));
  const next = await Promise.all(algs.map((a) => makeKey(a, `op-${a.toLowerCase()}-2`)));
  let published = [...current];
  const clientPublicKeys: KeyObject[] = [options.certs.signingKeyPs256, options.certs.signingKeyEs256].map((f) =>
    createPublicKey(readFileSync(f)),
  );
  const clientCertThumbprint = thumbprintOf(new X509Certificate(readFileSync(options.certs.clientCert)).raw);

  const requests: RecordedRequest[] = [];
  const queues = new Map<Endpoint, Step[]>();
  const grants = new Map<string, Grant>();
  const payments = new Map<string, PaymentRecord>();
  const bookings: Booking[] = [];
  const accessTokens = new Map<string, IssuedToken>();
  const seenJtis = new Set<string>();
  const metadata: Record<string, unknown> = {};

  const server: Server = createServer({
    key: readFileSync(options.certs.serverKey),
    cert: readFileSync(options.certs.serverCert),
    ca: readFileSync(options.certs.caCert),
    requestCert: true,
    // the handshake accepts any client so that an unauthorized cert can be recorded and refused per endpoint
    rejectUnauthorized: false,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  Object.assign(metadata, defaultMetadata(issuer));

  const pickKey = (alg: IdTokenAlg, which: 'current' | 'next'): SigningKeyPair =>
    (which === 'next' ? next : current).find((k) => k.alg === alg)!;

  const signIdToken: ScriptedOp['signIdToken'] = async (opts = {}) => {
    const now = Math.floor(clock.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: issuer,
      sub: opts.sub ?? 'user-1',
      aud: clientId,
      exp: now + 300,
      iat: now,
      ...(opts.authReqId === undefined ? {} : { [AUTH_REQ_ID_CLAIM]: opts.authReqId }),
    };
    const payload = applyOverrides(claims, opts.claims);
    const alg = opts.alg ?? idTokenAlg;
    if (alg === 'none') {
      return `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url.encode(JSON.stringify(payload))}.`;
    }
    const key = pickKey(alg, opts.key ?? 'current');
    const jwt = await new SignJWT(payload).setProtectedHeader({ alg, kid: key.kid, typ: 'JWT' }).sign(key.privateKey);
    return opts.tamper ? tamperSignature(jwt) : jwt;
  };

  const issueTokenResponse = async (
    req: RecordedRequest,
    grant: Grant | undefined,
    opts: { idToken?: IdTokenOptions; authorizationDetails?: unknown; body?: Record<string, unknown> },
  ): Promise<Reply> => {
    const accessToken = `at_${randomBytes(16).toString('hex')}`;
    accessTokens.set(accessToken, {
      thumbprint: req.clientCert?.thumbprint,
      kind: 'ciba',
      scope: 'payments',
      ...(grant ? { grant } : {}),
    });
    const intentId = requestedIntentId(grant?.requestedClaims);
    const details = opts.authorizationDetails !== undefined ? opts.authorizationDetails : grant?.authorizationDetails;
    const body: Record<string, unknown> = {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: 300,
      id_token: await signIdToken({
        ...opts.idToken,
        ...(intentId === undefined ? {} : { claims: { [INTENT_ID_CLAIM]: intentId, ...opts.idToken?.claims } }),
        authReqId: req.form.auth_req_id ?? '',
        sub: `user-${grant?.loginHint ?? '1'}`,
      }),
      ...(details === null || details === undefined ? {} : { authorization_details: details }),
    };
    return { status: 200, json: applyOverrides(body, opts.body), headers: { 'cache-control': 'no-store' } };
  };

  const verifyJwt = async (jwt: string, audience: string) => {
    const header = decodeProtectedHeader(jwt) as Record<string, unknown>;
    for (const key of clientPublicKeys) {
      try {
        // on the shared test clock: a service whose time was moved on signs with that time
        const { payload } = await jwtVerify(jwt, key, {
          audience,
          algorithms: ['PS256', 'ES256'],
          currentDate: new Date(clock.now()),
        });
        return { header, payload };
      } catch {
        // try the next registered key
      }
    }
    return undefined;
  };

  /** The client authentication the OP expects; returns an error reply or undefined when it passed. */
  const authenticateClient = async (req: RecordedRequest): Promise<Reply | undefined> => {
    const invalidClient: Reply = { status: 401, json: { error: 'invalid_client' } };
    const cert = req.clientCert;
    switch (clientAuth) {
      case 'tls_client_auth':
        if (!cert?.authorized || cert.subject !== 'CN=client' || req.form.client_id !== clientId) return invalidClient;
        return undefined;
      case 'client_secret_basic': {
        const expected = `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64')}`;
        return req.headers.authorization === expected ? undefined : invalidClient;
      }
      case 'private_key_jwt': {
        const assertion = req.form.client_assertion;
        if (req.form.client_assertion_type !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' || !assertion) {
          return invalidClient;
        }
        const verified = await verifyJwt(assertion, issuer);
        if (!verified || verified.payload.iss !== clientId || verified.payload.sub !== clientId) return invalidClient;
        const jti = verified.payload.jti;
        if (typeof jti !== 'string' || seenJtis.has(jti)) return invalidClient;
        seenJtis.add(jti);
        req.clientAssertion = verified;
        return undefined;
      }
    }
  };

  const answerBackchannel = async (req: RecordedRequest): Promise<Reply> => {
    let params: Record<string, unknown> = req.form;
    if (req.form.request !== undefined) {
      const verified = await verifyJwt(req.form.request, issuer);
      if (!verified)
        return { status: 400, json: { error: 'invalid_request', error_description: 'bad request object' } };
      req.requestObject = verified;
      params = verified.payload;
    }
    const loginHint = typeof params.login_hint === 'string' ? params.login_hint : '';
    if (loginHint === '' || loginHint === 'unknown') return { status: 400, json: { error: 'unknown_user_id' } };
    const details =
      typeof params.authorization_details === 'string'
        ? (JSON.parse(params.authorization_details) as unknown)
        : params.authorization_details;
    const expiresIn = options.expiresIn ?? 120;
    const grant: Grant = {
      authReqId: `arid_${randomBytes(12).toString('base64url')}`,
      loginHint,
      bindingMessage: typeof params.binding_message === 'string' ? params.binding_message : undefined,
      authorizationDetails: details,
      clientNotificationToken:
        typeof params.client_notification_token === 'string' ? params.client_notification_token : undefined,
      requestedClaims: typeof params.claims === 'string' ? (JSON.parse(params.claims) as unknown) : params.claims,
      expiresAt: clock.now() + expiresIn * 1000,
      state: 'pending',
    };
    grants.set(grant.authReqId, grant);
    return {
      status: 200,
      json: { auth_req_id: grant.authReqId, expires_in: expiresIn, interval: options.interval ?? 5 },
    };
  };

  const answerToken = async (req: RecordedRequest): Promise<Reply> => {
    if (req.form.grant_type === 'client_credentials') {
      const accessToken = `cc_${randomBytes(16).toString('hex')}`;
      const scope = req.form.scope ?? '';
      accessTokens.set(accessToken, { thumbprint: req.clientCert?.thumbprint, kind: 'client', scope });
      return { status: 200, json: { access_token: accessToken, token_type: 'Bearer', expires_in: 300, scope } };
    }
    if (req.form.grant_type !== CIBA_GRANT) return tokenError('unsupported_grant_type');
    const grant = grants.get(req.form.auth_req_id ?? '');
    if (!grant || grant.state === 'consumed') return tokenError('invalid_grant');
    if (grant.state === 'pending' && clock.now() >= grant.expiresAt) grant.state = 'expired';
    switch (grant.state) {
      case 'pending':
        return tokenError('authorization_pending');
      case 'denied':
        return tokenError('access_denied');
      case 'expired':
        return tokenError('expired_token');
      case 'approved': {
        grant.state = 'consumed';
        const opts =
          grant.returnedAuthorizationDetails === undefined
            ? {}
            : { authorizationDetails: grant.returnedAuthorizationDetails };
        return issueTokenResponse(req, grant, grant.idToken ? { ...opts, idToken: grant.idToken } : opts);
      }
    }
  };

  /** RFC 8705 §3: the token must have been issued to the certificate that presents it. */
  const answerPayment = async (req: RecordedRequest, step: Step | undefined): Promise<Reply> => {
    if (!req.clientCert?.authorized) return { status: 401, json: { error: 'certificate_required' } };
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const issued = token === undefined ? undefined : accessTokens.get(token);
    if (!issued || (issued.thumbprint !== undefined && issued.thumbprint !== req.clientCert.thumbprint)) {
      return { status: 401, json: { error: 'invalid_token' } };
    }
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string' || key === '') return { status: 400, json: { reason: 'idempotency_key_required' } };
    const previous = payments.get(key);
    if (previous) return previous.reply;
    const reply = step
      ? await runStep(step, req)
      : { status: 201, json: { id: `bp_${randomBytes(8).toString('hex')}`, status: 'accepted' } };
    // only definite answers are remembered, as a real idempotent API would
    if (reply.status < 500 && reply.status !== 429 && reply.status !== 409 && !reply.hangUp) {
      payments.set(key, { idempotencyKey: key, body: req.json, reply });
    }
    const answer = reply.json as { id?: unknown; status?: unknown } | undefined;
    const accepted = reply.status < 300 && answer?.status === 'accepted' && !reply.hangUp;
    if ((accepted || reply.book) && !bookings.some((b) => b.idempotencyKey === key)) {
      const endToEndId = (req.json as { end_to_end_id?: unknown } | undefined)?.end_to_end_id;
      bookings.push({
        bankPaymentId: typeof answer?.id === 'string' ? answer.id : `bp_${randomBytes(8).toString('hex')}`,
        idempotencyKey: key,
        endToEndId: typeof endToEndId === 'string' ? endToEndId : '',
      });
    }
    return reply;
  };

  /** DESIGN.md "Reconciliation": the client certificate alone, no bearer token. */
  const answerLookup = async (req: RecordedRequest, step: Step | undefined): Promise<Reply> => {
    if (!req.clientCert?.authorized) return { status: 401, json: { error: 'certificate_required' } };
    if (step) return runStep(step, req);
    const endToEndId = req.query.end_to_end_id;
    if (endToEndId === undefined) return { status: 400, json: { error: 'invalid_request' } };
    const found = bookings.filter((b) => b.endToEndId === endToEndId);
    return {
      status: 200,
      json: { payments: found.map((b) => ({ id: b.bankPaymentId, status: 'accepted', end_to_end_id: b.endToEndId })) },
    };
  };

  const route = async (req: RecordedRequest): Promise<Reply> => {
    const step = queues.get(req.endpoint)?.shift();
    switch (req.endpoint) {
      case 'discovery':
        return step ? runStep(step, req) : { status: 200, json: metadata };
      case 'jwks':
        return step ? runStep(step, req) : { status: 200, json: { keys: published.map((k) => k.jwk) } };
      case 'backchannel':
      case 'token': {
        const refused = await authenticateClient(req);
        if (refused) return refused;
        if (step) return runStep(step, req);
        return req.endpoint === 'token' ? answerToken(req) : answerBackchannel(req);
      }
      case 'payments':
        return answerPayment(req, step);
      case 'lookup':
        return answerLookup(req, step);
      case 'open-banking':
        if (step) return runStep(step, req);
        return options.openBanking ? options.openBanking(req, op) : { status: 404, json: { error: 'not_found' } };
      case 'unknown':
        return { status: 404, json: { error: 'not_found' } };
    }
  };

  server.on('request', (incoming: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const req = await recordRequest(incoming, clock);
      requests.push(req);
      const reply = await route(req);
      await sendReply(res, reply);
    })().catch(() => res.destroy());
  });

  const grantOf = (authReqId: string): Grant => {
    const grant = grants.get(authReqId);
    if (!grant) throw new Error('unknown auth_req_id');
    return grant;
  };

  const op: ScriptedOp = {
    issuer,
    apiUrl: `${issuer}/api`,
    clientId,
    clientSecret,
    certs: options.certs,
    metadata,
    requests,
    grants,
    payments,
    bookings,
    requestsTo: (endpoint) => requests.filter((r) => r.endpoint === endpoint),
    script(endpoint, ...steps) {
      queues.set(endpoint, [...(queues.get(endpoint) ?? []), ...steps]);
    },
    reset() {
      queues.clear();
      requests.length = 0;
      clientAuth = options.clientAuth ?? 'tls_client_auth';
      grants.clear();
      payments.clear();
      bookings.length = 0;
      published = [...current];
      for (const name of Object.keys(metadata)) Reflect.deleteProperty(metadata, name);
      Object.assign(metadata, defaultMetadata(issuer));
    },
    setClientAuth(method) {
      clientAuth = method;
    },
    lastGrant() {
      const all = [...grants.values()];
      const last = all[all.length - 1];
      if (!last) throw new Error('no grant yet');
      return last;
    },
    approve(authReqId, opts = {}) {
      const grant = grantOf(authReqId);
      grant.state = 'approved';
      if (opts.idToken) grant.idToken = opts.idToken;
      if (opts.authorizationDetails !== undefined) grant.returnedAuthorizationDetails = opts.authorizationDetails;
    },
    deny: (authReqId) => void (grantOf(authReqId).state = 'denied'),
    expire: (authReqId) => void (grantOf(authReqId).state = 'expired'),
    rotateKeys() {
      published = [...current, ...next];
    },
    signIdToken,
    tokenSuccess:
      (opts = {}) =>
      (req) =>
        issueTokenResponse(req, grants.get(req.form.auth_req_id ?? ''), opts),
    createAccessToken() {
      const token = `at_${randomBytes(16).toString('hex')}`;
      accessTokens.set(token, { thumbprint: clientCertThumbprint, kind: 'ciba', scope: 'payments' });
      return token;
    },
    tokenOf(req) {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      return token === undefined ? undefined : accessTokens.get(token);
    },
    async notify(authReqId, url) {
      const grant = grantOf(authReqId);
      const response = await fetch(url, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${grant.clientNotificationToken ?? ''}` },
        body: JSON.stringify({ auth_req_id: authReqId }),
      });
      return response.status;
    },
    configFor: (bank = {}, ciba = {}) => ({
      bank: {
        issuer,
        apiUrl: `${issuer}/api`,
        caCertFile: options.certs.caCert,
        clientId,
        clientAuthMethod: options.clientAuth ?? 'tls_client_auth',
        clientCertFile: options.certs.clientCert,
        clientKeyFile: options.certs.clientKey,
        clientPfxFile: undefined,
        clientPfxPassphrase: undefined,
        clientSecret,
        signingKeyFile: options.certs.signingKeyPs256,
        signingAlg: 'PS256',
        idTokenAlg,
        maxConnections: 4,
        pipelining: 1,
        timeoutMs: 2_000,
        ...bank,
      },
      ciba: {
        deliveryMode: 'poll',
        scope: 'openid',
        requestedExpiry: 120,
        signedRequest: false,
        requireGrantedDetails: true,
        ...ciba,
      },
    }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
  return op;
}

function defaultMetadata(issuer: string): Record<string, unknown> {
  return {
    issuer,
    token_endpoint: `${issuer}/token`,
    backchannel_authentication_endpoint: `${issuer}/bc-authorize`,
    jwks_uri: `${issuer}/jwks`,
    grant_types_supported: ['authorization_code', CIBA_GRANT],
    backchannel_token_delivery_modes_supported: ['poll', 'ping'],
    backchannel_authentication_request_signing_alg_values_supported: ['PS256', 'ES256'],
    backchannel_user_code_parameter_supported: false,
    id_token_signing_alg_values_supported: ['PS256', 'ES256', 'RS256'],
    token_endpoint_auth_methods_supported: ['tls_client_auth', 'private_key_jwt', 'client_secret_basic'],
    token_endpoint_auth_signing_alg_values_supported: ['PS256', 'ES256'],
    tls_client_certificate_bound_access_tokens: true,
    authorization_details_types_supported: ['payment_initiation'],
    mtls_endpoint_aliases: {
      token_endpoint: `${issuer}/mtls/token`,
      backchannel_authentication_endpoint: `${issuer}/mtls/bc-authorize`,
    },
  };
}

const ENDPOINTS: Record<string, Endpoint> = {
  '/.well-known/openid-configuration': 'discovery',
  '/jwks': 'jwks',
  '/bc-authorize': 'backchannel',
  '/mtls/bc-authorize': 'backchannel',
  '/token': 'token',
  '/mtls/token': 'token',
  '/api/payments': 'payments',
};

async function recordRequest(incoming: IncomingMessage, clock: Clock): Promise<RecordedRequest> {
  const chunks: Buffer[] = [];
  for await (const chunk of incoming) chunks.push(chunk as Buffer);
  const rawBody = Buffer.concat(chunks).toString('utf8');
  const url = new URL(incoming.url ?? '/', 'https://op.invalid');
  const path = url.pathname;
  const method = incoming.method ?? 'GET';
  const type = incoming.headers['content-type'] ?? '';
  const form = type.startsWith('application/x-www-form-urlencoded')
    ? Object.fromEntries(new URLSearchParams(rawBody))
    : {};
  let json: unknown;
  if (type.startsWith('application/json')) {
    try {
      json = JSON.parse(rawBody);
    } catch {
      json = undefined;
    }
  }
  const endpoint = ENDPOINTS[path] ?? 'unknown';
  return {
    endpoint:
      endpoint === 'payments' && method === 'GET'
        ? 'lookup'
        : endpoint === 'unknown' && path.startsWith('/api/open-banking/')
          ? 'open-banking'
          : endpoint,
    method,
    path,
    query: Object.fromEntries(url.searchParams),
    viaMtlsAlias: path.startsWith('/mtls/'),
    at: clock.now(),
    headers: incoming.headers,
    rawBody,
    form,
    json,
    clientCert: readClientCert(incoming.socket),
  };
}

function readClientCert(raw: unknown): RecordedRequest['clientCert'] {
  const socket = raw as TLSSocket;
  const cert = socket.getPeerCertificate();
  if (Object.keys(cert).length === 0) return undefined;
  const subject = Object.entries(cert.subject)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',');
  return { subject, authorized: socket.authorized, thumbprint: thumbprintOf(cert.raw) };
}

function thumbprintOf(der: Buffer): string {
  return createHash('sha256').update(der).digest('base64url');
}

async function runStep(step: Step, req: RecordedRequest): Promise<Reply> {
  return typeof step === 'function' ? step(req) : step;
}

const answerLate = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function sendReply(res: ServerResponse, reply: Reply): Promise<void> {
  // A scripted slow bank: the real delay is what the test is about (a timeout, a poll in flight).
  if (reply.delayMs) await answerLate(reply.delayMs);
  if (reply.hangUp) {
    res.socket?.destroy();
    return;
  }
  const headers: Record<string, string> = { ...reply.headers };
  let body = '';
  if (reply.json !== undefined) {
    body = JSON.stringify(reply.json);
    headers['content-type'] ??= 'application/json';
  } else if (reply.text !== undefined) {
    body = reply.text;
    headers['content-type'] ??= 'text/plain';
  }
  const socket = res.socket;
  res.writeHead(reply.status, headers).end(body, () => {
    if (reply.closeAfter) socket?.destroy();
  });
}

function tokenError(error: string, status = 400): Reply {
  return { status, json: { error }, headers: { 'cache-control': 'no-store' } };
}

function tamperSignature(jwt: string): string {
  const [header, payload, signature] = jwt.split('.') as [string, string, string];
  const bytes = base64url.decode(signature);
  bytes[0] = (bytes[0] ?? 0) ^ 0x01;
  return `${header}.${payload}.${base64url.encode(bytes)}`;
}

/** Merges overrides into a copy; an override of `undefined` removes the member. */
function applyOverrides(base: Record<string, unknown>, overrides: Record<string, unknown> = {}): JWTPayload {
  const merged = Object.entries({ ...base, ...overrides }).filter(([name]) => {
    return !(name in overrides) || overrides[name] !== undefined;
  });
  return Object.fromEntries(merged);
}

function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/** Test-only helpers exported for cases that build replies by hand. */
export const replies = {
  tokenError,
  json: (status: number, json: unknown, headers: Record<string, string> = {}): Reply => ({ status, json, headers }),
  text: (status: number, text: string, contentType = 'text/plain'): Reply => ({
    status,
    text,
    headers: { 'content-type': contentType },
  }),
  randomId: () => randomUUID(),
};
