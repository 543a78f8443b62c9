/** Amounts in minor units and their decimal form in major units (ISO 4217 exponents). */

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
