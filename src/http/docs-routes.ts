import { Router } from 'express';
import { z } from 'zod';
import { renderDocs, type Doc } from './docs-page.js';
import type { OpenApiBuild, OpenApiBuilder } from './openapi-builder.js';

/**
 * `GET /openapi.json` and `GET /docs`: the OpenAPI document and its HTML rendering. The document
 * comes in as `buildOpenApi` (openapi.ts), which also reads this file's own operations below.
 */
export function createDocsRoutes(buildOpenApi: () => OpenApiBuild): Router {
  const router = Router();
  let json: string | null = null;
  let html: string | null = null;

  router.get('/openapi.json', (_req, res) => {
    json ??= JSON.stringify(buildOpenApi().document);
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.type('application/json').send(json);
  });

  router.get('/docs', (_req, res) => {
    html ??= renderDocs(buildOpenApi().document as unknown as Doc);
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.type('text/html').send(html);
  });

  return router;
}

/** The OpenAPI operations of the routes above, declared beside them so both change together. */
export function documentDocsRoutes(b: OpenApiBuilder): void {
  b.route({
    method: 'get',
    path: '/openapi.json',
    tags: ['Documentation'],
    summary: 'This OpenAPI 3.1 document',
    responses: {
      200: {
        description: 'The document.',
        content: {
          'application/json': {
            schema: z
              .object({ openapi: z.string(), info: z.object({ title: z.string(), version: z.string() }) })
              .loose(),
          },
        },
      },
      ...b.problems('GET /openapi.json', []),
    },
  });
  b.route({
    method: 'get',
    path: '/docs',
    tags: ['Documentation'],
    summary: 'Readable API reference',
    description: 'This document rendered as one HTML page.',
    responses: {
      200: { description: 'HTML.', content: { 'text/html': { schema: z.string() } } },
      ...b.problems('GET /docs', []),
    },
  });
}
