import { z } from 'zod';

/**
 * The standard OpenTelemetry exporter variables the service reads itself (OTLP Exporter spec,
 * "Configuration Options"): tracing is off unless an OTLP endpoint is set. The SDK reads the rest
 * of the standard `OTEL_*` variables (sampler, batch processor, resource attributes) on its own.
 */
export interface TracingConfig {
  /** Where spans are POSTed: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`. */
  url: string;
  protocol: 'http/json' | 'http/protobuf';
  headers: Record<string, string>;
  serviceName: string;
}

const protocol = z.enum(['http/json', 'http/protobuf'], {
  error: 'must be http/protobuf or http/json (OTLP over HTTP; grpc is not supported)',
});
/** `key=value,key=value`, values percent-encoded (W3C Baggage format, as the spec says). */
const headers = z
  .string()
  .regex(/^\s*[^=,\s]+\s*=[^,]*(,\s*[^=,\s]+\s*=[^,]*)*$/, 'must be key=value pairs, comma-separated')
  .transform((v) =>
    Object.fromEntries(
      v.split(',').map((pair) => {
        const at = pair.indexOf('=');
        return [pair.slice(0, at).trim(), decodeURIComponent(pair.slice(at + 1).trim())];
      }),
    ),
  );

const tracingEnvSchema = z.object({
  OTEL_SDK_DISABLED: z.enum(['true', 'false']).default('false'),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol.default('http/protobuf'),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocol.optional(),
  OTEL_EXPORTER_OTLP_HEADERS: headers.optional(),
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: headers.optional(),
  OTEL_SERVICE_NAME: z.string().min(1).default('ciba-checkout'),
});

/** Null when tracing is off; throws with the variable's name and the problem when a value is bad. */
export function parseTracingEnv(env: Record<string, string | undefined>): TracingConfig | null {
  const parsed = tracingEnvSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${issue?.path.join('.') ?? 'OTEL_*'}: ${issue?.message ?? 'is invalid'}`);
  }
  const e = parsed.data;
  const base = e.OTEL_EXPORTER_OTLP_ENDPOINT?.replace(/\/$/, '');
  const url = e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (base ? `${base}/v1/traces` : undefined);
  if (!url || e.OTEL_SDK_DISABLED === 'true') return null;
  return {
    url,
    protocol: e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? e.OTEL_EXPORTER_OTLP_PROTOCOL,
    headers: { ...e.OTEL_EXPORTER_OTLP_HEADERS, ...e.OTEL_EXPORTER_OTLP_TRACES_HEADERS },
    serviceName: e.OTEL_SERVICE_NAME,
  };
}
