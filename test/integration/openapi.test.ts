import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Express } from 'express';
import request from 'supertest';
import { createApiApp } from '../../src/composition/api.js';
import { buildParts, closeParts, type Parts } from '../../src/composition/parts.js';
import { loadConfig } from '../../src/config.js';
import { buildOpenApi } from '../../src/http/openapi.js';
import { PROBLEMS } from '../../src/problem-codes.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { deleteKeysWithPrefix } from '../support/redis.js';
import { testCertificates, uniquePrefix } from '../support/system.js';

/**
 * The OpenAPI document against the real app: every route the app registers is documented, every
 * example satisfies its zod schema, every error code the code can throw is listed, and /docs renders.
 */

type Layer = { route?: { path: string | string[]; methods: Record<string, boolean> }; handle?: { stack?: Layer[] } };

/** `METHOD /path` of every route in the app, descending into routers mounted without a path. */
function registeredRoutes(app: Express): string[] {
  const out: string[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const path of [layer.route.path].flat()) {
          for (const [method, on] of Object.entries(layer.route.methods))
            if (on && method !== '_all') out.push(`${method.toUpperCase()} ${path}`);
        }
      } else if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return out;
}

/** Error codes thrown anywhere in the service (the sandbox bank is another program). */
function thrownCodes(): Set<string> {
  const codes = new Set<string>();
  const visit = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        if (name !== 'sandbox') visit(path);
      } else if (name.endsWith('.ts')) {
        for (const m of readFileSync(path, 'utf8').matchAll(/new AppError\(\s*'([a-z_]+)'/g)) codes.add(m[1]!);
      }
    }
  };
  visit('src');
  return codes;
}

let app: Express;
let parts: Parts;
let prefix: string;

beforeAll(() => {
  prefix = uniquePrefix('openapi');
  const certs = testCertificates();
  const config = loadConfig({
    REDIS_PREFIX: prefix,
    TOKEN_ENCRYPTION_KEY: Buffer.alloc(32).toString('base64'),
    BANK_ISSUER: 'https://bank.example',
    BANK_API_URL: 'https://bank.example/api',
    BANK_CA_CERT: certs.caCert,
    BANK_CLIENT_ID: 'shop',
    BANK_CLIENT_CERT: certs.clientCert,
    BANK_CLIENT_KEY: certs.clientKey,
    SHOP_API_KEY: 'sk_test_0123456789abcdef',
  });
  // The real app over real parts; no bank is called: routes are only listed, documented or 404'd.
  parts = buildParts(config, { logger: createLogger('silent'), metrics: createMetrics({ defaultMetrics: false }) });
  app = createApiApp(parts, { isDraining: () => false });
});

afterAll(async () => {
  await closeParts(parts, { cutBankCalls: false });
  await deleteKeysWithPrefix(prefix);
});

describe('the OpenAPI document', () => {
  const { document, examples, routes } = buildOpenApi();

  it('when the app is built, then every registered route is documented and every documented route exists', () => {
    const registered = new Set(registeredRoutes(app));
    const documented = new Set(routes);

    expect([...registered].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((r) => !registered.has(r))).toEqual([]);
    expect(registered.size).toBeGreaterThanOrEqual(13);
  });

  it('when examples are given, then each satisfies the zod schema it documents', () => {
    expect(examples.length).toBeGreaterThan(40);
    const failures = examples
      .map((ex) => ({ where: ex.where, result: ex.schema.safeParse(ex.value) }))
      .filter((r) => !r.result.success)
      .map((r) => `${r.where}: ${r.result.error?.message ?? ''}`);
    expect(failures).toEqual([]);
  });

  it('when the code throws an error code, then it is documented, and every documented code is thrown', () => {
    const thrown = thrownCodes();
    const documented = new Set(Object.keys(PROBLEMS));

    expect([...thrown].filter((c) => !documented.has(c)).sort()).toEqual([]);
    // bad_request comes from body-parser errors in problem.ts, not from `new AppError('…'`.
    expect([...documented].filter((c) => !thrown.has(c) && c !== 'bad_request').sort()).toEqual([]);
  });

  it('when every operation is read, then it has a summary, examples and problem+json errors with their codes', () => {
    for (const [path, methods] of Object.entries(document.paths ?? {})) {
      for (const [method, op] of Object.entries(
        methods as Record<
          string,
          {
            summary?: string;
            responses: Record<
              string,
              { content?: Record<string, { examples?: Record<string, unknown>; schema?: unknown }> }
            >;
          }
        >,
      )) {
        const where = `${method.toUpperCase()} ${path}`;
        expect([where, op.summary]).toEqual([where, expect.any(String)]);
        // Every operation, /openapi.json and /docs included, documents its error answers.
        expect([where, Object.keys(op.responses).some((status) => Number(status) >= 400)]).toEqual([where, true]);
        for (const [status, response] of Object.entries(op.responses)) {
          for (const [type, media] of Object.entries(response.content ?? {})) {
            if (Number(status) >= 400 && path !== '/readyz')
              expect([where, status, type]).toEqual([where, status, 'application/problem+json']);
            if (!['/openapi.json', '/docs'].includes(path))
              expect([where, status, Object.keys(media.examples ?? {}).length > 0]).toEqual([where, status, true]);
          }
        }
      }
    }
  });

  it('when every code is looked for, then each appears as an example on some route', () => {
    const text = JSON.stringify(document.paths);
    const missing = Object.keys(PROBLEMS).filter(
      (c) => c !== 'not_found' && c !== 'bad_request' && !text.includes(`"code":"${c}"`),
    );
    expect(missing).toEqual([]);
  });
});

describe('GET /openapi.json', () => {
  it('when fetched, then it is an OpenAPI 3.1 document whose references and path parameters all resolve', async () => {
    const res = await request(app)
      .get('/openapi.json')
      .expect(200)
      .expect('content-type', /application\/json/);
    const doc = res.body as {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<
        string,
        Record<string, { parameters?: { in: string; name: string; required?: boolean }[]; responses: object }>
      >;
      components: { schemas: Record<string, unknown>; securitySchemes: Record<string, { type: string }> };
    };

    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info.title).toBe('ciba-checkout');
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual([
      'clientSecret',
      'clientSecretQuery',
      'notificationToken',
      'shopKey',
    ]);
    for (const ref of JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/(\w+)\/(\w+)"/g)) {
      expect([
        ref[0],
        (doc.components as Record<string, Record<string, unknown> | undefined>)[ref[1]!]?.[ref[2]!],
      ]).toEqual([ref[0], expect.anything()]);
    }
    for (const [path, methods] of Object.entries(doc.paths)) {
      expect(path).toMatch(/^\//);
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      for (const [method, op] of Object.entries(methods)) {
        expect(['get', 'post', 'put', 'patch', 'delete']).toContain(method);
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
        const declared = (op.parameters ?? [])
          .filter((p) => p.in === 'path' && p.required)
          .map((p) => p.name)
          .sort();
        expect([path, declared]).toEqual([path, templated]);
      }
    }
  });
});

describe('GET /docs', () => {
  it('when fetched, then a self-contained page lists every operation, error code and schema, without scripts', async () => {
    const res = await request(app)
      .get('/docs')
      .expect(200)
      .expect('content-type', /text\/html/);
    const html = res.text;

    for (const route of buildOpenApi().routes) {
      const [method, path] = route.split(' ');
      expect(html).toContain(`${method!} ${path!.replace(/:(\w+)/g, '{$1}')}`);
    }
    for (const code of Object.keys(PROBLEMS)) expect(html).toContain(`<code>${code}</code>`);
    expect(html).toContain('id="schema-payment"');
    expect(html).toContain('K7P2-QX');
    expect(html).not.toMatch(/<script|https?:\/\/[^"'\s]*\.(js|css)/i);
    expect(res.headers['content-security-policy']).toMatch(/default-src 'self'/);
  });
});
