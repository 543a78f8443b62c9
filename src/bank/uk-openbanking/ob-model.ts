import { z } from 'zod';

/**
 * The parts of the Open Banking UK Read/Write API v3.1.10, Payment Initiation (domestic payments),
 * that this client sends and reads: OBWriteDomesticConsent4, OBWriteDomestic2, their responses
 * (OBWriteDomesticConsentResponse5, OBWriteDomesticResponse5) and OBErrorResponse1.
 * Responses are checked for the fields we use and otherwise left open (ASPSPs add optional fields).
 * @see https://openbankinguk.github.io/read-write-api-site3/v3.1.10/resources-and-data-models/pisp/domestic-payment-consents.html
 * @see https://openbankinguk.github.io/read-write-api-site3/v3.1.10/resources-and-data-models/pisp/domestic-payments.html
 */

export const OB_VERSION = 'v3.1.10';

/** OBWriteDomestic2/Data/Initiation: the payment the customer authorises; sent identically twice. */
export interface OBDomesticInitiation {
  InstructionIdentification: string;
  EndToEndIdentification: string;
  InstructedAmount: { Amount: string; Currency: string };
  CreditorAccount: { SchemeName: string; Identification: string; Name: string };
  RemittanceInformation: { Reference: string; Unstructured: string };
}

/** OBRisk1: the fields a merchant sets for an e-commerce payment. */
export interface OBRisk {
  PaymentContextCode: string;
  MerchantCategoryCode?: string;
  MerchantCustomerIdentification?: string;
}

const amountSchema = z.object({ Amount: z.string(), Currency: z.string() }).loose();
const initiationSchema = z
  .object({
    InstructionIdentification: z.string(),
    EndToEndIdentification: z.string(),
    InstructedAmount: amountSchema,
    CreditorAccount: z.object({ SchemeName: z.string(), Identification: z.string() }).loose(),
  })
  .loose();

/** OBWriteDomesticConsentResponse5/Data/Status (v3.1.10). */
export const CONSENT_STATUSES = ['AwaitingAuthorisation', 'Authorised', 'Rejected', 'Consumed'] as const;
export type ConsentStatus = (typeof CONSENT_STATUSES)[number];

/** OBWriteDomesticResponse5/Data/Status, OBTransactionIndividualStatus1Code (v3.1.10). */
export const PAYMENT_STATUSES = [
  'Pending',
  'Rejected',
  'AcceptedSettlementInProcess',
  'AcceptedSettlementCompleted',
  'AcceptedWithoutPosting',
  'AcceptedCreditSettlementCompleted',
] as const;
export type DomesticPaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const consentResponseSchema = z.object({
  Data: z
    .object({
      ConsentId: z.string().min(1).max(128),
      Status: z.enum(CONSENT_STATUSES),
      Initiation: initiationSchema,
    })
    .loose(),
});
export type ConsentResponse = z.infer<typeof consentResponseSchema>;

export const paymentResponseSchema = z.object({
  Data: z
    .object({
      DomesticPaymentId: z.string().min(1).max(40),
      ConsentId: z.string().min(1).max(128),
      Status: z.enum(PAYMENT_STATUSES),
      Initiation: initiationSchema.optional(),
    })
    .loose(),
});
export type PaymentResponse = z.infer<typeof paymentResponseSchema>;

/** OBErrorResponse1: `Code` is the HTTP status as text; each `Errors[]` entry has an OBErrorResponseError1Code. */
export const errorResponseSchema = z
  .object({
    Code: z.string(),
    Message: z.string().optional(),
    Errors: z.array(z.object({ ErrorCode: z.string(), Message: z.string().optional() }).loose()).min(1),
  })
  .loose();

/**
 * What a payment status means for us. Only the Accepted* statuses say money moved or will move
 * (v3.1.10 "Payment Status"); AcceptedSettlementInProcess is accepted by the ASPSP but not yet
 * settled, so like Pending it keeps the payment `processing` and is polled again.
 */
export type PaymentStatusMeaning = 'settled' | 'in_progress' | 'rejected';

export function meaningOfPaymentStatus(status: DomesticPaymentStatus): PaymentStatusMeaning {
  switch (status) {
    case 'AcceptedSettlementCompleted':
    case 'AcceptedCreditSettlementCompleted':
    case 'AcceptedWithoutPosting':
      return 'settled';
    case 'Pending':
    case 'AcceptedSettlementInProcess':
      return 'in_progress';
    case 'Rejected':
      return 'rejected';
  }
}

/** The first ErrorCode of an OBErrorResponse1 (e.g. `UK.OBIE.Resource.InvalidConsentStatus`), capped for logs. */
export function readObErrorCode(body: unknown): string | undefined {
  const parsed = errorResponseSchema.safeParse(body);
  const code = parsed.success ? parsed.data.Errors[0]?.ErrorCode : undefined;
  return code === undefined ? undefined : code.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
}
