import { parseMajorUnits } from '../payments/amounts.js';
import type { PaymentInitiationDetail } from './types.js';

/**
 * RFC 9396 `payment_initiation` details: what the bank says it authorized, compared with what was
 * asked (built in src/payments/authorization.ts).
 * @see https://www.rfc-editor.org/rfc/rfc9396#section-2
 */

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
