import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { JWK, JWTPayload } from 'jose';
import { z } from 'zod';
import type { SandboxKeys } from '../keys.js';
import type { Transfer } from '../transfers.js';
import { createOnce } from './ob-idempotency.js';
import { canonicalJson, ObError, parseJson, readBody, sendJson, verifyDetachedJws } from './ob-http.js';
import type { DomesticPayment, ObResources } from './ob-resources.js';
import { consentView, paymentView } from './ob-views.js';

/** One handler per operation of the sandbox's Open Banking UK API (ob-api.ts routes to them). */
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

export interface ObHandlerContext extends ObApiDeps {
  /** {apiUrl}/open-banking/v3.1/pisp, for the resources' Links.Self. */
  base: string;
  verifyAccessToken(req: IncomingMessage): Promise<JWTPayload & { client_id: string }>;
}

export type ResourceKind = 'domestic-payment-consents' | 'domestic-payments';

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

/** Reads, signature-checks and parses a POST body. */
async function readSigned<T>(
  context: ObHandlerContext,
  req: IncomingMessage,
  clientId: string,
  schema: z.ZodType<T>,
): Promise<{ raw: string; body: T }> {
  const raw = await readBody(req);
  const clientKeys = context.clientKeys.get(clientId);
  if (clientKeys !== undefined) await verifyDetachedJws(req.headers['x-jws-signature'], raw, clientKeys);
  const parsed = schema.safeParse(parseJson(raw));
  if (!parsed.success) {
    const path = parsed.error.issues[0]?.path.join('.') ?? '';
    throw new ObError(400, 'UK.OBIE.Field.Invalid', `invalid field ${path}`);
  }
  return { raw, body: parsed.data };
}

/** POST /domestic-payment-consents with a client-credentials token → AwaitingAuthorisation. */
export async function postConsent(context: ObHandlerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const token = await context.verifyAccessToken(req);
  if (token.openbanking_intent_id !== undefined) throw new ObError(403, 'UK.OBIE.Unauthorized', 'needs a client token');
  const { raw, body } = await readSigned(context, req, token.client_id, consentBodySchema);
  const scope = { clientId: token.client_id, resource: 'consent', rawBody: raw } as const;
  const { id } = await createOnce(context, req, scope, async () => {
    const consent = await context.resources.createConsent(
      { clientId: token.client_id, initiation: body.Data.Initiation, risk: body.Risk },
      context.consentTtlSeconds,
    );
    return consent.consentId;
  });
  const consent = await context.resources.getConsent(id);
  if (!consent) throw new ObError(500, 'UK.OBIE.UnexpectedError', 'consent vanished');
  sendJson(req, res, 201, consentView(context.base, consent));
}

/** POST /domestic-payments with the consent's CIBA access token and the identical Initiation → Pending. */
export async function postPayment(context: ObHandlerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const token = await context.verifyAccessToken(req);
  const { raw, body } = await readSigned(context, req, token.client_id, paymentBodySchema);
  // the CIBA access token is for exactly one consent (its openbanking_intent_id)
  if (token.openbanking_intent_id !== body.Data.ConsentId) {
    throw new ObError(403, 'UK.OBIE.Resource.ConsentMismatch', 'the access token is not for this consent');
  }
  const scope = { clientId: token.client_id, resource: 'payment', rawBody: raw } as const;
  const { id, replayed } = await createOnce(context, req, scope, async () => {
    const consent = await context.resources.getConsent(body.Data.ConsentId);
    if (consent?.clientId !== token.client_id) throw new ObError(400, 'UK.OBIE.Resource.NotFound', 'no such consent');
    if (canonicalJson(consent.initiation) !== canonicalJson(body.Data.Initiation)) {
      throw new ObError(400, 'UK.OBIE.Resource.ConsentMismatch', 'Initiation differs from the consent');
    }
    const payment = await context.resources.createPayment(consent, context.settleDelayMs);
    if (!payment) throw new ObError(400, 'UK.OBIE.Resource.InvalidConsentStatus', `consent is ${consent.status}`);
    await recordTransfer(context, payment, req.headers['x-idempotency-key'] as string);
    return payment.paymentId;
  });
  const payment = await context.resources.getPayment(id);
  if (!payment) throw new ObError(500, 'UK.OBIE.UnexpectedError', 'payment vanished');
  sendJson(req, res, 201, paymentView(context.base, payment), replayed ? { 'idempotent-replayed': 'true' } : {});
}

/** The money moved: listed with the sandbox payment API's transfers (SandboxBank.transfers()). */
async function recordTransfer(
  context: ObHandlerContext,
  payment: DomesticPayment,
  idempotencyKey: string,
): Promise<void> {
  const { InstructedAmount, CreditorAccount, EndToEndIdentification } = payment.initiation;
  const transfer: Transfer = {
    bankPaymentId: payment.paymentId,
    idempotencyKey,
    amount: InstructedAmount.Amount,
    currency: InstructedAmount.Currency,
    creditorIban: CreditorAccount.Identification,
    endToEndId: EndToEndIdentification,
  };
  await context.redis.rpush(context.keys.transfers(), JSON.stringify(transfer));
  context.log(
    `[bank] domestic payment ${InstructedAmount.Currency} ${InstructedAmount.Amount} to ${CreditorAccount.Name ?? CreditorAccount.Identification}: Pending`,
  );
}

/** GET /domestic-payment-consents/{ConsentId} and GET /domestic-payments/{DomesticPaymentId}, the caller's own only. */
export async function getResource(
  context: ObHandlerContext,
  req: IncomingMessage,
  res: ServerResponse,
  kind: ResourceKind,
  id: string,
): Promise<void> {
  const token = await context.verifyAccessToken(req);
  const notFound = new ObError(404, 'UK.OBIE.Resource.NotFound', 'no such resource');
  if (kind === 'domestic-payment-consents') {
    const consent = await context.resources.getConsent(id);
    if (consent?.clientId !== token.client_id) throw notFound;
    sendJson(req, res, 200, consentView(context.base, consent));
    return;
  }
  const payment = await context.resources.getPayment(id);
  if (payment?.clientId !== token.client_id) throw notFound;
  sendJson(req, res, 200, paymentView(context.base, payment));
}
