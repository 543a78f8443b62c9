import { AppError } from '../errors.js';

/**
 * Bounds the open event streams of this process (issue 11.6): each holds a socket, a heartbeat timer
 * and a change-feed listener, so an unbounded number of them is a cheap way to exhaust a process.
 * Per payment (a storefront needs one, a few tabs a few more): 429; per process: 503, for the
 * balancer to try another instance.
 */
export interface StreamSlots {
  /** Takes a slot for one stream of `paymentId` or throws; the returned function frees it (once). */
  take(paymentId: string): () => void;
  open(): number;
}

export function createStreamSlots(limits: { perPayment: number; total: number }): StreamSlots {
  const byPayment = new Map<string, number>();
  let total = 0;
  return {
    take(paymentId) {
      const mine = byPayment.get(paymentId) ?? 0;
      if (mine >= limits.perPayment)
        throw new AppError('too_many_streams', 'This payment already has as many open event streams as allowed.', {
          retryAfterSeconds: 5,
        });
      if (total >= limits.total)
        throw new AppError('stream_capacity_reached', 'This instance has no room for another event stream.', {
          retryAfterSeconds: 5,
        });
      byPayment.set(paymentId, mine + 1);
      total++;
      let freed = false;
      return () => {
        if (freed) return;
        freed = true;
        total--;
        const left = (byPayment.get(paymentId) ?? 1) - 1;
        if (left > 0) byPayment.set(paymentId, left);
        else byPayment.delete(paymentId);
      };
    },
    open: () => total,
  };
}
