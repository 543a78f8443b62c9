import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Request, Response } from 'express';
import { AppError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { headerBearer, matchesSecret } from './bearer.js';

/**
 * Where Prometheus reads `/metrics` (issue 11.6): the figures tell an outsider how busy the shop is
 * and which bank errors occur, so they are not public. Either on their own port (`METRICS_PORT`,
 * any ROLE, meant for the private network), or on the API port with `Authorization: Bearer
 * <METRICS_TOKEN>` (Prometheus `authorization` in the scrape config); with neither, the API answers
 * 404 as for any unknown route.
 */
export function createMetricsHandler(deps: { metrics: Metrics; token: string | undefined }) {
  return async (req: Request, res: Response): Promise<void> => {
    if (deps.token === undefined) throw new AppError('not_found', `No route for ${req.method} ${req.path}.`);
    if (!matchesSecret(headerBearer(req), deps.token))
      throw new AppError('unauthorized', '/metrics needs Authorization: Bearer <METRICS_TOKEN>.', {
        wwwAuthenticate: 'Bearer realm="metrics"',
      });
    res.setHeader('Cache-Control', 'no-store');
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  };
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** `/metrics` alone on `port`, for a scraper on the private network; everything else is 404. */
export async function startMetricsServer(metrics: Metrics, port: number): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' }).end(text);
      },
      () => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', resolve);
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
