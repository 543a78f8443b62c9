import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { TOKEN_ERROR_CODES } from './token-error-codes.js';

/** The service's Prometheus metrics, one registry per process (tests make their own). */
export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  checkouts: Counter<'outcome'>;
  cibaAnswers: Counter<'answer'>;
  pollLateness: Histogram;
  paymentsFinished: Counter<'status' | 'failure_code'>;
  webhookDeliveries: Counter<'result'>;
  /** Unknown bank outcomes settled (or not) by the reconciliation lookup. */
  reconciliations: Counter<'outcome'>;
  /** Conditions an operator must look at (fixed label values, never the bank's words). */
  operatorAlarms: Counter<'alarm'>;
  dueDepth: Gauge<'set'>;
}

export function createMetrics(
  options: { defaultMetrics?: boolean; depth?: () => Promise<{ due: number; leased: number }> } = {},
): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Counter<L>({ name, help, labelNames, registers: [registry] });
  return {
    registry,
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    checkouts: counter('checkouts_total', 'POST /checkout by outcome code.', ['outcome']),
    cibaAnswers: counter('ciba_token_answers_total', 'Token endpoint answers by kind or error code.', ['answer']),
    pollLateness: new Histogram({
      name: 'scheduler_lateness_seconds',
      help: 'How late due work was claimed.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    paymentsFinished: counter('payments_finished_total', 'Payments reaching a terminal status.', [
      'status',
      'failure_code',
    ]),
    webhookDeliveries: counter('webhook_deliveries_total', 'Webhook delivery attempts by result.', ['result']),
    reconciliations: counter(
      'payment_reconciliations_total',
      'Reconciliation lookups of payments whose bank outcome was unknown, by outcome (succeeded, failed, pending, unavailable).',
      ['outcome'],
    ),
    operatorAlarms: counter(
      'operator_alarms_total',
      'Conditions needing an operator: token_client_rejected, bank_keys_unavailable, token_after_failure, reconciliation_unavailable, bank_call_not_replicated, transition_not_replicated, claim_note_not_replicated, void_mark_not_replicated, payment_not_listed.',
      ['alarm'],
    ),
    dueDepth: queueDepthGauge(registry, options.depth),
  };
}

function queueDepthGauge(registry: Registry, depth?: () => Promise<{ due: number; leased: number }>): Gauge<'set'> {
  return new Gauge({
    name: 'scheduler_queue_depth',
    help: 'Work items waiting (due) and in hand (leased).',
    labelNames: ['set'],
    registers: [registry],
    async collect() {
      if (!depth) return;
      const current = await depth();
      this.set({ set: 'due' }, current.due);
      this.set({ set: 'leased' }, current.leased);
    },
  });
}

/**
 * Label values of `ciba_token_answers_total`: our outcome kinds and the token endpoint's registered
 * error codes (CIBA Core §11, RFC 6749 §5.2) plus our own checks. Anything else a bank sends is
 * `other`: every distinct label value is a time series kept for the life of the process, so a bank
 * (or a proxy in front of it) must not be able to grow them without bound (issue 11.6).
 */
const CIBA_ANSWER_LABELS: ReadonlySet<string> = new Set([
  'pending',
  'retry',
  'authorized',
  ...TOKEN_ERROR_CODES,
  'invalid_scope',
  'transaction_failed',
  'invalid_token_response',
  'unsupported_token_type',
  'invalid_id_token',
  'authorization_mismatch',
]);

/** The allow-listed label for a token answer (`invalid_id_token: <reason>` counts as `invalid_id_token`). */
export function cibaAnswerLabel(answer: string): string {
  const code = answer.split(':', 1)[0] ?? '';
  return CIBA_ANSWER_LABELS.has(code) ? code : 'other';
}

/**
 * Counts token answers by their allow-listed label, one labelled child per label found once: the
 * poll path counts thousands a second, and `inc({ answer })` would hash its labels every time.
 */
export function createCibaAnswerCounter(counter: Counter<'answer'>): (answer: string) => void {
  const children = new Map<string, Counter.Internal>();
  return (answer) => {
    // Known answers are cached as they come (a bounded set); any other text maps to `other` each time.
    let child = children.get(answer);
    if (!child) {
      const label = cibaAnswerLabel(answer);
      child = counter.labels({ answer: label });
      if (label === answer) children.set(answer, child);
    }
    child.inc();
  };
}
