import { parseTracingEnv } from '../../src/tracing-config.js';
import { currentTraceparent, inSpan, traceHeaders, tracingActive } from '../../src/tracing.js';

describe('tracing configuration (standard OTEL_* variables)', () => {
  test('when no OTLP endpoint is set, then tracing is off', () => {
    expect(parseTracingEnv({})).toBeNull();
    expect(parseTracingEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toBeNull();
  });

  test('when the endpoint is set, then spans go to <endpoint>/v1/traces, protobuf unless http/json is asked for', () => {
    expect(parseTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toEqual({
      url: 'http://collector:4318/v1/traces',
      protocol: 'http/protobuf',
      headers: {},
      serviceName: 'ciba-checkout',
    });
    expect(
      parseTracingEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/custom',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_HEADERS: 'api-key=abc%3D%3D, tenant = shop',
        OTEL_SERVICE_NAME: 'pay',
      }),
    ).toEqual({
      url: 'https://traces.example/custom',
      protocol: 'http/json',
      headers: { 'api-key': 'abc==', tenant: 'shop' },
      serviceName: 'pay',
    });
  });

  test('when OTEL_SDK_DISABLED=true, then tracing is off even with an endpoint', () => {
    expect(parseTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBeNull();
  });

  test.each([
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      'OTEL_EXPORTER_OTLP_PROTOCOL',
    ],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_HEADERS: 'no-equals' },
      'OTEL_EXPORTER_OTLP_HEADERS',
    ],
  ])('when %j, then start-up stops naming %s', (env, name) => {
    expect(() => parseTracingEnv(env)).toThrow(new RegExp(`^${name}: `));
  });
});

describe('tracing while off', () => {
  test('when no SDK was started, then spans are not recorded and no trace header is sent', async () => {
    expect(tracingActive()).toBe(false);
    const seen = await inSpan('anything', {}, (span) => Promise.resolve(span.isRecording()));
    expect(seen).toBe(false);
    expect(traceHeaders()).toEqual({});
    expect(currentTraceparent()).toBeNull();
  });
});
