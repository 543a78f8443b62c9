import type { PaymentInitiationDetail } from './types.js';

/**
 * RFC 9396 `payment_initiation` details: built from a payment in minor units, and compared with
 * what the bank says it authorized.
 * @see https://www.rfc-editor.org/rfc/rfc9396#section-2
 */

/** ISO 4217 minor-unit exponents; a currency missing here is refused rather than guessed. */
const MINOR_UNIT_EXPONENTS: Readonly<Record<string, number>> = {
  eur: 2,
  usd: 2,
  gbp: 2,
  chf: 2,
  sek: 2,
  nok: 2,
  dkk: 2,
  pln: 2,
  czk: 2,
  huf: 2,
  ron: 2,
  cad: 2,
  aud: 2,
  jpy: 0,
  krw: 0,
  isk: 0,
  clp: 0,
  bhd: 3,
  kwd: 3,
  jod: 3,
  omr: 3,
  tnd: 3,
};

export function minorUnitExponent(currency: string): number {
  const exponent = MINOR_UNIT_EXPONENTS[currency.toLowerCase()];
  if (exponent === undefined) throw new RangeError(`unsupported currency: ${currency}`);
  return exponent;
}

/** 1290 eur → "12.90"; 500 jpy → "500". */
export function formatMinorUnits(amount: number, currency: string): string {
  if (!Number.isSafeInteger(amount) || amount < 0) throw new RangeError('amount must be a non-negative integer');
  const exponent = minorUnitExponent(currency);
  if (exponent === 0) return String(amount);
  const digits = String(amount).padStart(exponent + 1, '0');
  return `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}

/** "12.90" or "12.9" eur → 1290; undefined for anything that is not a plain decimal with at most `exponent` places. */
export function parseMajorUnits(amount: string, currency: string): number | undefined {
  const exponent = minorUnitExponent(currency);
  const match = /^(\d{1,15})(?:\.(\d+))?$/.exec(amount);
  if (!match) return undefined;
  const fraction = (match[2] ?? '').replace(/0+$/, '');
  if (fraction.length > exponent) return undefined;
  return Number(match[1]) * 10 ** exponent + Number(fraction.padEnd(exponent, '0') || '0');
}

export interface PaymentForAuthorization {
  /** Minor units. */
  amount: number;
  /** Lower-case ISO 4217. */
  currency: string;
  creditorName: string;
  creditorIban: string;
  remittanceInformation: string;
}

export function buildPaymentInitiationDetail(payment: PaymentForAuthorization): PaymentInitiationDetail {
  return {
    type: 'payment_initiation',
    instructedAmount: {
      currency: payment.currency.toUpperCase(),
      amount: formatMinorUnits(payment.amount, payment.currency),
    },
    creditorName: payment.creditorName,
    creditorAccount: { iban: payment.creditorIban },
    remittanceInformationUnstructured: payment.remittanceInformation,
  };
}

/**
 * Compares the bank's returned authorization_details with what we asked for: the returned
 * payment_initiation entries must match the expected ones one to one in amount, currency and
 * creditor (name and IBAN). Other detail types are not ours to judge and are ignored.
 * Returns a reason on mismatch, undefined when they agree.
 * @see https://www.rfc-editor.org/rfc/rfc9396#section-7
 */
export function findAuthorizationMismatch(returned: unknown, expected: PaymentInitiationDetail[]): string | undefined {
  if (!Array.isArray(returned)) return 'authorization_details is not an array';
  const payments = returned.filter((d: unknown) => isRecord(d) && d.type === 'payment_initiation');
  if (payments.length !== expected.length) return 'payment_initiation count differs';
  const unmatched = [...expected];
  for (const detail of payments) {
    const index = unmatched.findIndex((e) => isSamePayment(detail, e));
    if (index === -1) return 'payment_initiation differs from the requested payment';
    unmatched.splice(index, 1);
  }
  return undefined;
}

function isSamePayment(detail: unknown, expected: PaymentInitiationDetail): boolean {
  if (!isRecord(detail)) return false;
  const { instructedAmount, creditorAccount, creditorName } = detail;
  if (!isRecord(instructedAmount) || !isRecord(creditorAccount)) return false;
  const { currency, amount } = instructedAmount;
  if (typeof currency !== 'string' || typeof amount !== 'string' || typeof creditorAccount.iban !== 'string') {
    return false;
  }
  const expectedCurrency = expected.instructedAmount.currency;
  if (currency.toUpperCase() !== expectedCurrency.toUpperCase()) return false;
  const minor = parseMajorUnits(amount, currency);
  if (minor === undefined || minor !== parseMajorUnits(expected.instructedAmount.amount, expectedCurrency)) {
    return false;
  }
  return (
    normalizeIban(creditorAccount.iban) === normalizeIban(expected.creditorAccount.iban) &&
    creditorName === expected.creditorName
  );
}

/** IBANs are compared in electronic format: no spaces, upper case (ISO 13616). */
function normalizeIban(iban: string): string {
  return iban.replace(/\s+/g, '').toUpperCase();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
