import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { DevCertificates } from './certs.js';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * A listening server that answers 503 until its handler is set: the issuer and app URLs need the
 * ports before the OP and the pages that name them can be built.
 */
export interface ListeningServer {
  server: Server;
  port: number;
  setHandler(handler: RequestHandler): void;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

async function startDeferred(
  create: (dispatch: RequestHandler) => Server,
  port: number,
  host: string,
): Promise<ListeningServer> {
  let handler: RequestHandler = (_req, res) => res.writeHead(503).end();
  const server = create((req, res) => {
    handler(req, res);
  });
  return {
    server,
    port: await listen(server, port, host),
    setHandler(next) {
      handler = next;
    },
  };
}

/** The OP and the payment APIs: HTTPS with the dev server certificate, asking every peer for a client certificate. */
export function startTlsServer(certs: DevCertificates, port: number, host: string): Promise<ListeningServer> {
  const tls = {
    key: readFileSync(certs.serverKey),
    cert: readFileSync(certs.serverCert),
    ca: readFileSync(certs.caCert),
    // Ask every peer for a certificate and verify it against the dev CA. rejectUnauthorized is
    // off only so discovery and the JWKS work without one; the OP and the APIs use a certificate
    // only when socket.authorized is true (peer-certificate.ts; RFC 8705 §2.1, §3).
    requestCert: true,
    rejectUnauthorized: false,
  };
  return startDeferred((dispatch) => createHttpsServer(tls, dispatch), port, host);
}

/** The bank-app page (the "phone"): plain HTTP, by default on loopback. */
export function startAppServer(port: number, host: string): Promise<ListeningServer> {
  return startDeferred((dispatch) => createHttpServer(dispatch), port, host);
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
    server.closeAllConnections();
  });
}
