import { AppError } from '../errors.js';
import { toPaymentView, type PaymentRecord, type PaymentStatus, type PaymentView } from './payment.js';

/**
 * The shop's list of its payments (GET /payments), newest first, paged with Stripe-style cursors.
 *
 * The index holds only (created_at, id); status and metadata are read from the payment itself, so a
 * status filter always sees the CURRENT status (no second index that a crash could leave stale, and
 * none that would have to share a hash slot with every payment in Redis Cluster). The price is that a
 * filter matching few payments reads more of them: one request examines at most `SCAN_BUDGET`
 * payments and then answers what it found with `next_cursor` to go on from.
 */

/** Where a page continues: after the cursor towards older payments, or before it towards newer ones. */
export type ListDirection = 'older' | 'newer';

/** The list index (created_at, id) a payment enters when it is created (port; src/store implements it). */
export interface PaymentListIndex {
  /**
   * Up to `count` ids next to `cursor` in `direction` (from the newest or oldest end without one), with
   * created_at in [createdGte, createdLt); fewer when the range ends; null when the cursor is not listed.
   */
  scan(query: {
    direction: ListDirection;
    cursor: string | null;
    createdGte: number | null;
    createdLt: number | null;
    count: number;
  }): Promise<string[] | null>;
}

export interface ListPaymentsDeps {
  index: PaymentListIndex;
  /** Null for a payment that is gone (retention) or not written yet. */
  getPayments(ids: readonly string[]): Promise<(PaymentRecord | null)[]>;
}

export interface ListPaymentsQuery {
  limit: number;
  startingAfter?: string | undefined;
  endingBefore?: string | undefined;
  status?: PaymentStatus | undefined;
  /** created_at bounds in ms: `createdGte` inclusive, `createdLt` exclusive. */
  createdGte?: number | undefined;
  createdLt?: number | undefined;
  metadata?: Record<string, string> | undefined;
}

export interface PaymentList {
  /** Newest first, in both directions (as Stripe answers `ending_before`). */
  data: PaymentView[];
  hasMore: boolean;
  /** What to pass as `starting_after` (or `ending_before` when paging that way) to go on; null at the end. */
  nextCursor: string | null;
}

/** Payments one request examines at most when filtering by status or metadata. */
export const SCAN_BUDGET = 1000;
const SCAN_BATCH = 100;

export async function listPayments(deps: ListPaymentsDeps, query: ListPaymentsQuery): Promise<PaymentList> {
  const direction: ListDirection = query.endingBefore ? 'newer' : 'older';
  const matches = matcherFor(query);
  const filtered = query.status !== undefined || Object.keys(query.metadata ?? {}).length > 0;
  const found: PaymentRecord[] = [];
  let cursor = query.endingBefore ?? query.startingAfter ?? null;
  let examined = 0;

  // One more than the page, to know whether there is more (has_more).
  while (found.length <= query.limit) {
    const wanted = query.limit + 1 - found.length;
    const count = filtered ? Math.min(SCAN_BATCH, SCAN_BUDGET - examined) : wanted;
    const ids = await deps.index.scan({
      direction,
      cursor,
      createdGte: query.createdGte ?? null,
      createdLt: query.createdLt ?? null,
      count,
    });
    if (ids === null) throw unknownCursor(direction);
    const payments = await deps.getPayments(ids);
    for (const [i, payment] of payments.entries()) {
      examined += 1;
      cursor = ids[i] ?? cursor;
      if (payment && matches(payment)) found.push(payment);
      if (found.length > query.limit) break;
    }
    if (found.length > query.limit) break;
    if (ids.length < count) return page(found, direction, { hasMore: false, nextCursor: null });
    if (filtered && examined >= SCAN_BUDGET) return page(found, direction, { hasMore: true, nextCursor: cursor });
  }
  const shown = found.slice(0, query.limit);
  return page(shown, direction, { hasMore: true, nextCursor: shown.at(-1)?.id ?? cursor });
}

function matcherFor(query: ListPaymentsQuery): (payment: PaymentRecord) => boolean {
  const wanted = Object.entries(query.metadata ?? {});
  return (payment) =>
    (query.status === undefined || payment.status === query.status) &&
    wanted.every(([key, value]) => Object.hasOwn(payment.metadata, key) && payment.metadata[key] === value);
}

function page(
  found: PaymentRecord[],
  direction: ListDirection,
  more: { hasMore: boolean; nextCursor: string | null },
): PaymentList {
  const data = found.map(toPaymentView);
  // Paging towards newer payments collects them oldest first; the answer is newest first regardless.
  if (direction === 'newer') data.reverse();
  return { data, ...more };
}

function unknownCursor(direction: ListDirection): AppError {
  const param = direction === 'older' ? 'starting_after' : 'ending_before';
  return new AppError('validation_failed', 'The request query is not valid.', {
    errors: [{ path: `$.${param}`, message: 'no such payment in the list (unknown, or past the retention period)' }],
  });
}
