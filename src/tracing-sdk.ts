import { context, propagation, trace } from '@opentelemetry/api';
import type { TracingConfig } from './tracing-config.js';
import { setTracingActive } from './tracing.js';

/**
 * Starts the OpenTelemetry SDK (loaded only here, only when tracing is configured): a Node tracer
 * provider with W3C Trace Context propagation (no baggage) and AsyncLocalStorage context, batching spans to an
 * OTLP/HTTP exporter, JSON or protobuf as OTEL_EXPORTER_OTLP_PROTOCOL says. One provider per process;
 * every service started in it shares it, and the last one to close flushes and stops it.
 */
export interface Tracing {
  /** Exports what is buffered, then stops (the last holder only). */
  close(): Promise<void>;
}

let running: { users: number; shutdown: () => Promise<void> } | null = null;

export async function startTracing(config: TracingConfig): Promise<Tracing> {
  if (!running) {
    const [{ NodeTracerProvider, BatchSpanProcessor }, { W3CTraceContextPropagator }, resources, exporter] =
      await Promise.all([
        import('@opentelemetry/sdk-trace-node'),
        import('@opentelemetry/core'),
        import('@opentelemetry/resources'),
        config.protocol === 'http/json'
          ? import('@opentelemetry/exporter-trace-otlp-http')
          : import('@opentelemetry/exporter-trace-otlp-proto'),
      ]);
    const resource = resources
      .defaultResource()
      .merge(resources.resourceFromAttributes({ 'service.name': config.serviceName }))
      .merge(resources.detectResources({ detectors: [resources.envDetector] }));
    const provider = new NodeTracerProvider({
      resource,
      spanProcessors: [
        new BatchSpanProcessor(new exporter.OTLPTraceExporter({ url: config.url, headers: config.headers })),
      ],
    });
    // W3C Trace Context only: the default also carries W3C Baggage, which would forward whatever
    // `baggage` a caller sent to the bank and the shop's webhook receiver.
    provider.register({ propagator: new W3CTraceContextPropagator() });
    setTracingActive(true);
    running = {
      users: 0,
      shutdown: async () => {
        setTracingActive(false);
        await provider.shutdown();
        // Unregistered, so a later start in this process (tests) can register again.
        trace.disable();
        context.disable();
        propagation.disable();
      },
    };
  }
  const held = running;
  held.users += 1;
  let closed = false;
  return {
    async close() {
      if (closed) return;
      closed = true;
      held.users -= 1;
      if (held.users === 0 && running === held) {
        running = null;
        await held.shutdown();
      }
    },
  };
}
