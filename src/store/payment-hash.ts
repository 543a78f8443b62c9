import { STATUS_LETTER, statusOfStored } from '../payments/event-log.js';
import type { FailureCode, LineItem, PaymentRecord, PaymentStatus, SpentGrant } from '../payments/payment.js';

/**
 * How a payment record is laid out in its Redis hash (issue 12.4: ≤ 400 B of Redis per pending
 * payment). Tens of thousands of pending payments sit here, so the hash must stay in Redis' compact
 * listpack encoding, which holds only while every value is ≤ 64 bytes (`hash-max-listpack-value`,
 * not ours to change on a managed Redis); one longer value turns the whole hash into a hashtable of
 * about twice the bytes. Hence:
 * - one-letter field names ('status' stays: the transition script reads it by name);
 * - the status as one letter (`STATUS_LETTER`, as in the event log; names written before are read,
 *   and the transition script is given both forms to compare with);
 * - nothing stored that is derivable: the id is in the key, default values (no metadata, no
 *   attempts, a 5 s interval) are absent fields, and `updated_at` while it equals `created_at`;
 * - line items as JSON arrays `[["tea-01",2,1290]]` rather than objects;
 * - values that may exceed 64 bytes in the pending phase (auth_req_id, callback_url) split into
 *   parts `r`, `r1`, `r2`… of ≤ 64 bytes each.
 * The access token after approval is one long value again: that hash is no longer pending.
 *
 * Hashes written by earlier versions (long field names, `items` objects, `id` field) are read as
 * they are; a write to such a hash also deletes the long name of every field it writes, so an old
 * value can never shadow a new one (see `encodeFields`).
 */

/** Field names of the payment hash; `LEGACY_FIELD` has the names earlier versions wrote. */
export const PAYMENT_FIELD = {
  id: '',
  status: 'status',
  amount: 'a',
  currency: 'c',
  items: 'i',
  bindingMessage: 'b',
  expiresAt: 'x',
  failureCode: 'f',
  createdAt: 't',
  updatedAt: 'u',
  metadata: 'm',
  secretHash: 'h',
  authReqId: 'r',
  intervalMs: 'n',
  callbackUrl: 'k',
  sealedAccessToken: 'T',
  accessTokenExpiresAt: 'E',
  bankPaymentId: 'B',
  bankConsentId: 'C',
  bankCalledAt: 'A',
  reconcileSince: 'R',
  heldToken: 'H',
  attempts: 'N',
  spentGrant: 'S',
} as const satisfies Record<keyof PaymentRecord, string>;

const LEGACY_FIELD = {
  id: 'id',
  status: 'status',
  amount: 'amount',
  currency: 'currency',
  items: 'items',
  bindingMessage: 'binding',
  expiresAt: 'expires_at',
  failureCode: 'failure',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  metadata: 'metadata',
  secretHash: 'secret',
  authReqId: 'arid',
  intervalMs: 'interval',
  callbackUrl: 'callback',
  sealedAccessToken: 'token',
  accessTokenExpiresAt: 'token_exp',
  bankPaymentId: 'bank_id',
  bankConsentId: 'consent',
  bankCalledAt: 'bank_at',
  reconcileSince: 'reconcile',
  heldToken: 'held',
  attempts: 'attempts',
  spentGrant: 'S',
} as const satisfies Record<keyof PaymentRecord, string>;

export type PaymentField = keyof PaymentRecord;

/** A field's name and the one earlier versions wrote, as a script reads it: the first present one. */
export function storedNames(name: PaymentField): string {
  return `${PAYMENT_FIELD[name]},${LEGACY_FIELD[name]}`;
}

/** Not part of the record: the creating request's traceparent (tracing on), read by the worker's spans. */
export const TRACE_FIELDS = ['p', 'trace'] as const;

/** Redis' default `hash-max-listpack-value`: the longest value that keeps a hash compact. */
export const LISTPACK_VALUE_BYTES = 64;
/** Values split into parts so a pending payment's hash stays compact; the rest are never long then. */
const SPLIT: ReadonlySet<PaymentField> = new Set(['authReqId', 'callbackUrl']);
/** Most parts a split value has: 16 × 64 B (a longer value puts the rest into its last part). */
const MAX_PARTS = 16;

/** A payment's poll interval when its hash holds none (CIBA Core §7.3: 5 s when the bank sends none). */
export const DEFAULT_INTERVAL_MS = 5000;

const DEFAULTS: Partial<Record<PaymentField, string>> = {
  metadata: '{}',
  intervalMs: String(DEFAULT_INTERVAL_MS),
  attempts: '0',
};

/** The stored form of a status (see the layout above). */
export function storedStatus(status: PaymentStatus): string {
  return STATUS_LETTER[status];
}

/** A status as read from the hash (letter, or a name an earlier version wrote); null when absent or unknown. */
export function decodeStatus(stored: string | null | undefined): PaymentStatus | null {
  return stored ? (statusOfStored(stored) ?? null) : null;
}

function encodeValue(name: PaymentField, value: PaymentRecord[PaymentField]): string | null {
  if (value === null || value === undefined) return null;
  if (name === 'status') return storedStatus(value as PaymentStatus);
  if (name === 'items') return JSON.stringify((value as LineItem[]).map((i) => [i.sku, i.quantity, i.unitAmount]));
  if (name === 'spentGrant') return encodeSpentGrant(value as SpentGrant);
  const encoded = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return encoded === DEFAULTS[name] ? null : encoded;
}

/** `<failAt>:<failure code>`: short, where JSON would come near the 64 bytes of a compact hash value. */
function encodeSpentGrant({ failAt, failureCode }: SpentGrant): string {
  return `${String(failAt)}:${failureCode}`;
}

/** The stored form of `spentGrant` read back; null when absent. */
export function decodeSpentGrant(stored: string | null | undefined): SpentGrant | null {
  if (!stored) return null;
  const sep = stored.indexOf(':');
  return { failAt: Number(stored.slice(0, sep)), failureCode: stored.slice(sep + 1) as FailureCode };
}

/** `s` in parts of at most 64 UTF-8 bytes, never splitting a character. */
export function splitValue(s: string): string[] {
  if (Buffer.byteLength(s) <= LISTPACK_VALUE_BYTES) return [s];
  const parts: string[] = [];
  let part = '';
  let bytes = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > LISTPACK_VALUE_BYTES && parts.length < MAX_PARTS - 1) {
      parts.push(part);
      part = '';
      bytes = 0;
    }
    part += ch;
    bytes += n;
  }
  parts.push(part);
  return parts;
}

/** Field of part `i` of a split value (part 0 is the field itself). */
export function partField(field: string, i: number): string {
  return i === 0 ? field : `${field}${i}`;
}

/**
 * Partial record → hash fields to set and fields to delete. Every field written also deletes its
 * pre-12.4 name (a hash an earlier version wrote) and the unused parts of a split value.
 */
export function encodeFields(
  fields: Partial<PaymentRecord>,
  opts: { fresh?: boolean } = {},
): { set: Record<string, string>; drop: string[] } {
  const set: Record<string, string> = {};
  const drop: string[] = [];
  for (const [name, value] of Object.entries(fields) as [PaymentField, PaymentRecord[PaymentField]][]) {
    const field = PAYMENT_FIELD[name];
    if (field === '') continue;
    // A new payment's updated_at is its created_at: read from `t` (a later write sets `u`).
    if (name === 'updatedAt' && opts.fresh && value === fields.createdAt) continue;
    const encoded = encodeValue(name, value);
    const parts = encoded === null ? [] : SPLIT.has(name) ? splitValue(encoded) : [encoded];
    parts.forEach((part, i) => (set[partField(field, i)] = part));
    if (opts.fresh) continue;
    if (parts.length === 0) drop.push(field);
    if (SPLIT.has(name)) for (let i = Math.max(1, parts.length); i < MAX_PARTS; i++) drop.push(partField(field, i));
    if (LEGACY_FIELD[name] !== field) drop.push(LEGACY_FIELD[name]);
  }
  return { set, drop };
}

/** A split value joined again from its parts (`r`, `r1`, …); undefined when absent. */
export function joinParts(hash: Record<string, string>, field: string): string | undefined {
  let value = hash[field];
  if (value === undefined) return undefined;
  for (let i = 1, part = hash[partField(field, 1)]; part !== undefined; part = hash[partField(field, ++i)])
    value += part;
  return value;
}

function raw(hash: Record<string, string>, name: PaymentField): string | undefined {
  const value = SPLIT.has(name) ? joinParts(hash, PAYMENT_FIELD[name]) : hash[PAYMENT_FIELD[name]];
  return value ?? hash[LEGACY_FIELD[name]] ?? DEFAULTS[name];
}

function decodeItems(json: string | undefined): LineItem[] {
  const parsed = JSON.parse(json ?? '[]') as unknown[];
  return parsed.map((i) => {
    if (Array.isArray(i)) return { sku: String(i[0]), quantity: Number(i[1]), unitAmount: Number(i[2]) };
    return i as LineItem;
  });
}

/** The record of a payment hash (HGETALL) under `id`; null when there is no payment (no status). */
export function decodeRecord(hash: Record<string, string>, id: string): PaymentRecord | null {
  const status = decodeStatus(hash[PAYMENT_FIELD.status]);
  if (!status) return null;
  const spentGrant = decodeSpentGrant(raw(hash, 'spentGrant'));
  const str = (name: PaymentField) => raw(hash, name) ?? null;
  const num = (name: PaymentField) => {
    const v = raw(hash, name);
    return v === undefined ? null : Number(v);
  };
  return {
    id,
    status,
    amount: Number(raw(hash, 'amount')),
    currency: raw(hash, 'currency') ?? '',
    items: decodeItems(raw(hash, 'items')),
    bindingMessage: raw(hash, 'bindingMessage') ?? '',
    expiresAt: Number(raw(hash, 'expiresAt')),
    failureCode: str('failureCode') as FailureCode | null,
    createdAt: Number(raw(hash, 'createdAt')),
    updatedAt: Number(raw(hash, 'updatedAt') ?? raw(hash, 'createdAt')),
    metadata: JSON.parse(raw(hash, 'metadata') ?? '{}') as Record<string, string>,
    secretHash: raw(hash, 'secretHash') ?? '',
    authReqId: str('authReqId'),
    intervalMs: Number(raw(hash, 'intervalMs')),
    callbackUrl: str('callbackUrl'),
    sealedAccessToken: str('sealedAccessToken'),
    accessTokenExpiresAt: num('accessTokenExpiresAt'),
    bankPaymentId: str('bankPaymentId'),
    bankConsentId: str('bankConsentId'),
    bankCalledAt: num('bankCalledAt'),
    reconcileSince: num('reconcileSince'),
    heldToken: str('heldToken'),
    attempts: Number(raw(hash, 'attempts')),
    // Optional (rare, and absent from the records a checkout creates): only there when noted.
    ...(spentGrant ? { spentGrant } : {}),
  };
}
