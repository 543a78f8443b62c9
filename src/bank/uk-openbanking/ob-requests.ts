import type { Dispatcher } from 'undici';
import { BackchannelError } from '../../ciba/types.js';
import { discardBody, isJsonContentType, parseRetryAfter, readJsonObject } from '../../ciba/http-response.js';
import { isDefiniteRefusal, readSuccessBody, retryOutcome } from '../bank-response.js';
import type { BankPaymentOutcome } from '../types.js';
import {
  consentResponseSchema,
  meaningOfPaymentStatus,
  paymentResponseSchema,
  readObErrorCode,
  type ConsentStatus,
  type OBDomesticInitiation,
  type OBRisk,
} from './ob-model.js';

/**
 * Request builders and response processors of the domestic-payment steps (v3.1.10): each
 * processor checks every field it reads and maps the answer onto our outcomes. None throws for a
 * bank answer except the consent step, whose errors are the checkout's (BackchannelError).
 */

export interface OpenBankingSettings {
  /** x-fapi-financial-id, only sent when the ASPSP still asks for it (optional since v3.1.x). */
  financialId: string | undefined;
  risk: { paymentContextCode: string; merchantCategoryCode: string | undefined };
  creditor: { schemeName: string; identification: string; name: string };
}

/** What both POSTs carry: built from the payment alone so the consent and the payment are identical. */
export function buildInitiation(
  settings: Pick<OpenBankingSettings, 'creditor'>,
  payment: { id: string; amount: string; currency: string },
): OBDomesticInitiation {
  return {
    InstructionIdentification: payment.id,
    EndToEndIdentification: payment.id,
    InstructedAmount: { Amount: payment.amount, Currency: payment.currency },
    CreditorAccount: {
      SchemeName: settings.creditor.schemeName,
      Identification: settings.creditor.identification,
      Name: settings.creditor.name,
    },
    RemittanceInformation: { Reference: payment.id, Unstructured: `Order ${payment.id}` },
  };
}

export function buildRisk(settings: Pick<OpenBankingSettings, 'risk'>): OBRisk {
  const { paymentContextCode, merchantCategoryCode } = settings.risk;
  return merchantCategoryCode === undefined
    ? { PaymentContextCode: paymentContextCode }
    : { PaymentContextCode: paymentContextCode, MerchantCategoryCode: merchantCategoryCode };
}

/** The fields the customer sees and the payment must repeat; the ASPSP may add others. */
function sameInitiation(
  echoed: { InstructedAmount: { Amount: string; Currency: string }; CreditorAccount: { Identification: string } } & {
    EndToEndIdentification: string;
  },
  sent: OBDomesticInitiation,
): boolean {
  return (
    echoed.EndToEndIdentification === sent.EndToEndIdentification &&
    echoed.InstructedAmount.Currency === sent.InstructedAmount.Currency &&
    Number(echoed.InstructedAmount.Amount) === Number(sent.InstructedAmount.Amount) &&
    echoed.CreditorAccount.Identification === sent.CreditorAccount.Identification
  );
}

/**
 * POST /domestic-payment-consents answer → the ConsentId. 201 with AwaitingAuthorisation and our
 * Initiation echoed is the only success; errors become the checkout's BackchannelError codes.
 */
export async function processConsentResponse(
  response: Dispatcher.ResponseData,
  sent: OBDomesticInitiation,
  nowMs: number,
): Promise<string> {
  const status = response.statusCode;
  if (status === 429 || status >= 500) {
    await discardBody(response);
    const retryAfterMs = parseRetryAfter(response.headers['retry-after'], nowMs);
    const seconds = retryAfterMs === undefined ? undefined : Math.ceil(retryAfterMs / 1000);
    throw new BackchannelError('bank_unavailable', `consent answered ${status}`, undefined, seconds);
  }
  const body = await readJsonObject(response).catch(() => undefined);
  if (status === 201 || status === 200) {
    const parsed = consentResponseSchema.safeParse(body);
    if (!isJsonContentType(response.headers) || !parsed.success) {
      throw new BackchannelError('bank_invalid_response', 'malformed consent answer');
    }
    const { ConsentId, Status, Initiation } = parsed.data.Data;
    if (Status !== 'AwaitingAuthorisation' || !sameInitiation(Initiation, sent)) {
      throw new BackchannelError('bank_invalid_response', `consent ${Status} or not the payment we asked for`);
    }
    return ConsentId;
  }
  const code = readObErrorCode(body) ?? `http_${status}`;
  // 401/403: our certificate, token or registration is wrong, not the customer's payment
  const ours = status === 401 || status === 403;
  throw new BackchannelError(ours ? 'bank_client_error' : 'bank_request_rejected', `consent refused: ${code}`, {
    error: code,
  });
}

/**
 * POST /domestic-payments and GET /domestic-payments/{id} answers → an outcome. Only the Accepted*
 * statuses that mean settlement are `accepted`; Pending and AcceptedSettlementInProcess are
 * `pending` (polled again); Rejected is a definite no. A 4xx to the POST carries an OBErrorResponse1
 * whose first ErrorCode becomes the reason; 5xx, 429 and unreadable successes decide nothing (`retry`).
 */
export async function processPaymentResponse(
  response: Dispatcher.ResponseData,
  expect: { consentId: string | undefined; bankPaymentId: string | undefined; fourXxIsFinal: boolean },
  nowMs: number,
): Promise<BankPaymentOutcome> {
  const status = response.statusCode;
  if (status === 200 || status === 201) {
    const parsed = paymentResponseSchema.safeParse(await readSuccessBody(response));
    if (!parsed.success) return { kind: 'retry', reason: 'malformed_answer' };
    const data = parsed.data.Data;
    const foreign =
      (expect.consentId !== undefined && data.ConsentId !== expect.consentId) ||
      (expect.bankPaymentId !== undefined && data.DomesticPaymentId !== expect.bankPaymentId);
    // an answer about another payment says nothing about ours; asking again is safe
    if (foreign) return { kind: 'retry', reason: 'answer_for_another_payment' };
    switch (meaningOfPaymentStatus(data.Status)) {
      case 'settled':
        return { kind: 'accepted', bankPaymentId: data.DomesticPaymentId };
      case 'in_progress':
        return { kind: 'pending', bankPaymentId: data.DomesticPaymentId };
      case 'rejected':
        return { kind: 'rejected', reason: 'Rejected' };
    }
  }
  // a refused status lookup (our client-credentials token, a 404 while the ASPSP catches up) says
  // nothing about the payment itself: only POST /domestic-payments gets a definite no from a 4xx
  // A 4xx refuses the request (say 401: the token expired); it is the payment's own "no" only when
  // no earlier attempt may have reached the bank, which the submit use case knows, not this client.
  if (isDefiniteRefusal(status) && expect.fourXxIsFinal) {
    const body = await readJsonObject(response).catch(() => undefined);
    return { kind: 'refused', reason: readObErrorCode(body) ?? `http_${status}` };
  }
  return retryOutcome(response, nowMs);
}

/** The Status of a GET /domestic-payment-consents/{id} answer; undefined for anything but a readable 200. */
export async function readConsentStatus(response: Dispatcher.ResponseData): Promise<ConsentStatus | undefined> {
  if (response.statusCode !== 200) {
    await discardBody(response);
    return undefined;
  }
  const parsed = consentResponseSchema.safeParse(await readSuccessBody(response));
  return parsed.success ? parsed.data.Data.Status : undefined;
}
