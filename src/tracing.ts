import {
  context,
  INVALID_SPAN_CONTEXT,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
} from '@opentelemetry/api';

/**
 * Tracing through the OpenTelemetry API only. Until tracing-sdk.ts starts the SDK (when an OTLP
 * endpoint is configured) nothing here does any work: no SDK is loaded, `inSpan` calls straight
 * through, `traceHeaders()` is empty, so the hot paths (a token poll) pay one boolean check.
 *
 * A payment's trace starts at POST /checkout; its W3C traceparent is stored on the payment, so the
 * worker's polls, the token, the bank payment call and each webhook delivery join the same trace
 * however many processes and minutes lie between them. Span attributes never hold tokens,
 * secrets, auth_req_ids or query strings: only ids the shop already sees, hosts and outcomes.
 */
const tracer = trace.getTracer('ciba-checkout');
const NO_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
let active = false;

export { SpanKind };
export type { Context, Span };

/** Set by tracing-sdk.ts while the SDK runs. */
export function setTracingActive(on: boolean): void {
  active = on;
}

export function tracingActive(): boolean {
  return active;
}

/** W3C Trace Context headers (`traceparent`, `tracestate`) of the active span, for an outgoing request. */
export function traceHeaders(): Readonly<Record<string, string>> {
  if (!active) return NO_HEADERS;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** The active span's `traceparent`, to store with a payment; null when nothing is recorded. */
export function currentTraceparent(): string | null {
  return traceHeaders().traceparent ?? null;
}

/** The context a stored or received `traceparent` continues (the root context without one). */
export function contextFrom(carrier: Record<string, string | string[] | undefined> | null): Context {
  return carrier ? propagation.extract(ROOT_CONTEXT, carrier) : ROOT_CONTEXT;
}

/**
 * Where a request's span starts. A trusted caller (the shop backend, with the shop key) continues
 * its own trace. Anyone else's `traceparent` is only linked, not continued: an anonymous caller must
 * not choose the trace id a payment's spans (and the bank's and the shop's `traceparent`) carry, nor
 * its sampling decision (the W3C Trace Context spec's advice at a trust boundary).
 */
export function requestParent(
  headers: Record<string, string | string[] | undefined>,
  trusted: boolean,
): { parent: Context; links: Link[] } {
  const callerContext = contextFrom(headers);
  if (trusted) return { parent: callerContext, links: [] };
  const caller = trace.getSpanContext(callerContext);
  return { parent: ROOT_CONTEXT, links: caller && trace.isSpanContextValid(caller) ? [{ context: caller }] : [] };
}

/**
 * Runs `fn` in a new span (a child of `parent`, else of the active span): a thrown error marks the
 * span as failed (its class name only; messages may quote what a bank answered) and is rethrown.
 */
export async function inSpan<T>(
  name: string,
  options: { kind?: SpanKind; attributes?: Attributes; parent?: Context },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  if (!active) return fn(NO_SPAN);
  const parent = options.parent ?? context.active();
  const spanOptions = {
    kind: options.kind ?? SpanKind.INTERNAL,
    ...(options.attributes && { attributes: options.attributes }),
  };
  return tracer.startActiveSpan(name, spanOptions, parent, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : 'error' });
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * A span that ends later (a server request, ended when the answer is sent), and a function that
 * runs code with it active.
 */
export function startSpan(
  name: string,
  options: { kind: SpanKind; attributes?: Attributes; parent: Context; links?: Link[] },
): { span: Span; run: <T>(fn: () => T) => T } {
  const span = tracer.startSpan(
    name,
    {
      kind: options.kind,
      ...(options.attributes && { attributes: options.attributes }),
      ...(options.links && { links: options.links }),
    },
    options.parent,
  );
  const ctx = trace.setSpan(options.parent, span);
  return { span, run: (fn) => context.with(ctx, fn) };
}

export function markFailed(span: Span, reason: string): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
}
