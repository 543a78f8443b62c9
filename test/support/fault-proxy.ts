import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of the bank's payment API that breaks the connection on demand. TLS passes
 * through untouched (mTLS stays end to end), so the bank sees the shop's own certificate.
 *
 * - `pass`: forwards both ways.
 * - `hang`: accepts and swallows what the client sends; the request never reaches the bank.
 * - `lose_response`: forwards the request to the bank but never the answer back (the bank acts; the
 *   shop hears nothing), the nastiest case for exactly-once.
 * - `reset`: resets every connection (ECONNRESET).
 */
export type FaultMode = 'pass' | 'hang' | 'lose_response' | 'reset';

export interface FaultProxy {
  port: number;
  mode: FaultMode;
  setMode(mode: FaultMode): void;
  setUpstream(port: number): void;
  /** Connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

export async function startFaultProxy(): Promise<FaultProxy> {
  let upstreamPort = 0;
  const sockets = new Set<Socket>();
  const proxy: FaultProxy = {
    port: 0,
    mode: 'pass',
    connections: 0,
    setMode(mode) {
      proxy.mode = mode;
      // Kept-alive connections feel the new mode too.
      if (mode === 'reset') for (const s of sockets) s.resetAndDestroy();
    },
    setUpstream(port) {
      upstreamPort = port;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    },
  };
  const server: Server = createServer((client) => {
    proxy.connections++;
    if (proxy.mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: upstreamPort });
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    // TLS record scan of what the client sends: once it sent application_data (0x17; in TLS 1.3 its
    // Finished too), its handshake is complete and whatever the bank answers may be lost.
    let sentAppData = false;
    let skip = 0;
    let header = Buffer.alloc(0);
    const scan = (chunk: Buffer) => {
      let i = 0;
      while (i < chunk.length && !sentAppData) {
        if (skip > 0) {
          const n = Math.min(skip, chunk.length - i);
          skip -= n;
          i += n;
          continue;
        }
        header = Buffer.concat([header, chunk.subarray(i, i + 5 - header.length)]);
        i += Math.min(5, chunk.length - i);
        if (header.length < 5) break;
        if (header[0] === 0x17) sentAppData = true;
        skip = header.readUInt16BE(3);
        header = Buffer.alloc(0);
      }
    };
    client.on('data', (chunk: Buffer) => {
      if (proxy.mode === 'hang') return;
      scan(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (proxy.mode === 'pass' || (proxy.mode === 'lose_response' && !sentAppData)) client.write(chunk);
    });
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
  });
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve();
    });
  });
  const address = server.address();
  proxy.port = typeof address === 'object' && address ? address.port : 0;
  return proxy;
}
