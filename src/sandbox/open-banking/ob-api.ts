import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { JWK } from 'jose';
import { z } from 'zod';
import type { SandboxKeys } from '../keys.js';
import type { Transfer } from '../payment-api.js';
import {
  canonicalJson,
  createTokenVerifier,
  ObError,
  parseJson,
  readBody,
  sendJson,
  sendObError,
  verifyDetachedJws,
} from './ob-http.js';
import type { Consent, DomesticPayment, ObResources } from './ob-resources.js';

/**
 * The sandbox bank's Open Banking UK Payment Initiation API (v3.1.10, domestic payments), served
 * under `{apiUrl}/open-banking/v3.1/pisp` on the OP's mTLS server:
 * - POST /domestic-payment-consents (client-credentials token) → AwaitingAuthorisation
 * - GET  /domestic-payment-consents/{ConsentId}
 * - POST /domestic-payments (the CIBA access token of that consent, identical Initiation) → Pending;
 *   the consent becomes Consumed
 * - GET  /domestic-payments/{DomesticPaymentId} → AcceptedSettlementCompleted once the settle delay passed
 * POSTs need `x-idempotency-key` (a replay returns the same resource, never a second one) and,
 * for clients with registered keys, a valid `x-jws-signature`. Errors are OBErrorResponse1.
 */
export const OB_API_PATH = '/open-banking/v3.1/pisp';

export interface ObApiDeps {
  redis: Redis;
  keys: SandboxKeys;
  resources: ObResources;
  issuer: string;
  /** Audience of the OP's access tokens ({issuer}/api). */
  apiUrl: string;
  jwks: { keys: JWK[] };
  /** Public signing keys per client (their x-jws-signature); a client without keys is not asked for one. */
  clientKeys: ReadonlyMap<string, JWK[]>;
  /** How long an AwaitingAuthorisation consent waits for the customer. */
  consentTtlSeconds: number;
  /** How long a payment stays Pending before AcceptedSettlementCompleted. */
  settleDelayMs: number;
  log: (line: string) => void;
}

const initiationSchema = z
  .object({
    InstructionIdentification: z.string().min(1).max(35),
    EndToEndIdentification: z.string().min(1).max(35),
    InstructedAmount: z
      .object({ Amount: z.string().regex(/^\d{1,13}(\.\d{1,5})?$/), Currency: z.string().regex(/^[A-Z]{3}$/) })
      .strict(),
    CreditorAccount: z
      .object({
        SchemeName: z.string().min(1).max(40),
        Identification: z.string().min(1).max(256),
        Name: z.string().min(1).max(350).optional(),
      })
      .loose(),
    RemittanceInformation: z
      .object({ Reference: z.string().max(35).optional(), Unstructured: z.string().max(140).optional() })
      .strict()
      .optional(),
  })
  .loose();
const consentBodySchema = z.object({
  Data: z.object({ Initiation: initiationSchema }).strict(),
  Risk: z.object({}).loose(),
});
const paymentBodySchema = z.object({
  Data: z.object({ ConsentId: z.string().min(1).max(128), Initiation: initiationSchema }).strict(),
  Risk: z.object({}).loose(),
});

const IDEMPOTENCY_SECONDS = 24 * 3600;

export function createObApi(deps: ObApiDeps) {
  const { redis, keys, resources } = deps;
  const verifyAccessToken = createTokenVerifier({ issuer: deps.issuer, audience: deps.apiUrl, jwks: deps.jwks });
  const base = `${deps.apiUrl}${OB_API_PATH}`;

  const consentView = (c: Consent) => ({
    Data: {
      ConsentId: c.consentId,
      CreationDateTime: c.created,
      Status: c.status,
      StatusUpdateDateTime: c.updated,
      Initiation: c.initiation,
    },
    Risk: c.risk,
    Links: { Self: `${base}/domestic-payment-consents/${c.consentId}` },
    Meta: {},
  });
  const paymentView = (p: DomesticPayment) => ({
    Data: {
      DomesticPaymentId: p.paymentId,
      ConsentId: p.consentId,
      CreationDateTime: p.created,
      Status: p.status,
      StatusUpdateDateTime: p.updated,
      Initiation: p.initiation,
    },
    Links: { Self: `${base}/domestic-payments/${p.paymentId}` },
    Meta: {},
  });

  /** Reads, signature-checks and parses a POST body. */
  async function readSigned<T>(
    req: IncomingMessage,
    clientId: string,
    schema: z.ZodType<T>,
  ): Promise<{ raw: string; body: T }> {
    const raw = await readBody(req);
    const clientKeys = deps.clientKeys.get(clientId);
    if (clientKeys !== undefined) await verifyDetachedJws(req.headers['x-jws-signature'], raw, clientKeys);
    const parsed = schema.safeParse(parseJson(raw));
    if (!parsed.success) {
      const path = parsed.error.issues[0]?.path.join('.') ?? '';
      throw new ObError(400, 'UK.OBIE.Field.Invalid', `invalid field ${path}`);
    }
    return { raw, body: parsed.data };
  }

  /**
   * x-idempotency-key: the first request with a key creates; a replay with the same body gets the
   * same resource (in its current status), another body with the key is refused.
   */
  async function idempotent(
    req: IncomingMessage,
    clientId: string,
    resource: string,
    raw: string,
    create: () => Promise<string>,
  ): Promise<{ id: string; replayed: boolean }> {
    const key = req.headers['x-idempotency-key'];
    if (typeof key !== 'string' || key.length === 0 || key.length > 40) {
      throw new ObError(400, 'UK.OBIE.Header.Missing', 'x-idempotency-key (Max40Text) is required');
    }
    const slot = keys.obIdempotency(clientId, resource, key);
    const fingerprint = createHash('sha256')
      .update(canonicalJson(JSON.parse(raw)))
      .digest('base64url');
    const claimed = await redis.set(slot, JSON.stringify({ fingerprint }), 'EX', IDEMPOTENCY_SECONDS, 'NX');
    if (claimed === null) {
      const stored = JSON.parse((await redis.get(slot)) ?? '{}') as { fingerprint?: string; id?: string };
      if (stored.fingerprint !== fingerprint) {
        throw new ObError(400, 'UK.OBIE.Resource.ConsentMismatch', 'x-idempotency-key reused with another body');
      }
      if (stored.id === undefined)
        throw new ObError(409, 'UK.OBIE.Resource.InProgress', 'request in progress', { 'retry-after': '1' });
      return { id: stored.id, replayed: true };
    }
    try {
      const id = await create();
      await redis.set(slot, JSON.stringify({ fingerprint, id }), 'KEEPTTL');
      return { id, replayed: false };
    } catch (error) {
      await redis.del(slot); // nothing was created: the key is free again
      throw error;
    }
  }

  async function postConsent(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const token = await verifyAccessToken(req);
    if (token.openbanking_intent_id !== undefined)
      throw new ObError(403, 'UK.OBIE.Unauthorized', 'needs a client token');
    const { raw, body } = await readSigned(req, token.client_id, consentBodySchema);
    const { id } = await idempotent(req, token.client_id, 'consent', raw, async () => {
      const consent = await resources.createConsent(
        { clientId: token.client_id, initiation: body.Data.Initiation, risk: body.Risk },
        deps.consentTtlSeconds,
      );
      return consent.consentId;
    });
    const consent = await resources.getConsent(id);
    if (!consent) throw new ObError(500, 'UK.OBIE.UnexpectedError', 'consent vanished');
    sendJson(req, res, 201, consentView(consent));
  }

  async function postPayment(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const token = await verifyAccessToken(req);
    const { raw, body } = await readSigned(req, token.client_id, paymentBodySchema);
    // the CIBA access token is for exactly one consent (its openbanking_intent_id)
    if (token.openbanking_intent_id !== body.Data.ConsentId) {
      throw new ObError(403, 'UK.OBIE.Resource.ConsentMismatch', 'the access token is not for this consent');
    }
    const { id, replayed } = await idempotent(req, token.client_id, 'payment', raw, async () => {
      const consent = await resources.getConsent(body.Data.ConsentId);
      if (consent?.clientId !== token.client_id) throw new ObError(400, 'UK.OBIE.Resource.NotFound', 'no such consent');
      if (canonicalJson(consent.initiation) !== canonicalJson(body.Data.Initiation)) {
        throw new ObError(400, 'UK.OBIE.Resource.ConsentMismatch', 'Initiation differs from the consent');
      }
      const payment = await resources.createPayment(consent, deps.settleDelayMs);
      if (!payment) throw new ObError(400, 'UK.OBIE.Resource.InvalidConsentStatus', `consent is ${consent.status}`);
      await recordTransfer(payment, req.headers['x-idempotency-key'] as string);
      return payment.paymentId;
    });
    const payment = await resources.getPayment(id);
    if (!payment) throw new ObError(500, 'UK.OBIE.UnexpectedError', 'payment vanished');
    sendJson(req, res, 201, paymentView(payment), replayed ? { 'idempotent-replayed': 'true' } : {});
  }

  async function recordTransfer(payment: DomesticPayment, idempotencyKey: string): Promise<void> {
    const { InstructedAmount, CreditorAccount, EndToEndIdentification } = payment.initiation;
    const transfer: Transfer = {
      bankPaymentId: payment.paymentId,
      idempotencyKey,
      amount: InstructedAmount.Amount,
      currency: InstructedAmount.Currency,
      creditorIban: CreditorAccount.Identification,
      endToEndId: EndToEndIdentification,
    };
    await redis.rpush(keys.transfers(), JSON.stringify(transfer));
    deps.log(
      `[bank] domestic payment ${InstructedAmount.Currency} ${InstructedAmount.Amount} to ${CreditorAccount.Name ?? CreditorAccount.Identification}: Pending`,
    );
  }

  async function getResource(req: IncomingMessage, res: ServerResponse, kind: string, id: string): Promise<void> {
    const token = await verifyAccessToken(req);
    const notFound = new ObError(404, 'UK.OBIE.Resource.NotFound', 'no such resource');
    if (kind === 'domestic-payment-consents') {
      const consent = await resources.getConsent(id);
      if (consent?.clientId !== token.client_id) throw notFound;
      sendJson(req, res, 200, consentView(consent));
      return;
    }
    const payment = await resources.getPayment(id);
    if (payment?.clientId !== token.client_id) throw notFound;
    sendJson(req, res, 200, paymentView(payment));
  }

  async function route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const match = /^\/(domestic-payment-consents|domestic-payments)(?:\/([A-Za-z0-9_-]{1,64}))?$/.exec(path);
    if (!match?.[1]) throw new ObError(404, 'UK.OBIE.NotFound', 'no such endpoint');
    const [, kind, id] = match;
    if (id !== undefined && req.method === 'GET') return getResource(req, res, kind, id);
    if (id === undefined && req.method === 'POST') {
      return kind === 'domestic-payments' ? postPayment(req, res) : postConsent(req, res);
    }
    throw new ObError(405, 'UK.OBIE.NotAllowed', 'method not allowed');
  }

  return {
    async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
      try {
        await route(req, res, path);
      } catch (error) {
        if (error instanceof ObError) sendObError(req, res, error);
        else {
          deps.log(`[bank] open banking API error: ${error instanceof Error ? error.message : 'unknown'}`);
          sendObError(req, res, new ObError(500, 'UK.OBIE.UnexpectedError', 'unexpected error'));
        }
      }
    },
  };
}
