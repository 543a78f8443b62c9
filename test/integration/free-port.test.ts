import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { freePort } from '../support/system.js';

/**
 * The tests' free ports (test/support/system.ts): a port handed out is bound later (a service's PORT,
 * a child process), so it must be one that no listen(0) or outgoing connection on the machine can
 * take in between, i.e. outside the kernel's ephemeral range, and never handed out twice in a row.
 */
describe('freePort', () => {
  const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);

  test('when ports are handed out, then none is in the ephemeral range, each differs, and each can be bound', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 20; i++) ports.push(await freePort());
    expect(ports.filter((p) => p >= (low ?? 0) && p <= (high ?? 65535))).toEqual([]);
    expect(new Set(ports).size).toBe(ports.length);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(ports[0], '0.0.0.0', resolve));
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
  });

  test('when a port is taken, then it is not handed out', async () => {
    const taken = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, '0.0.0.0', resolve));
    try {
      const next: number[] = [];
      for (let i = 0; i < 1500; i++) next.push(await freePort()); // a whole block: round to the taken one
      expect(next).not.toContain(port);
    } finally {
      await new Promise<void>((resolve) =>
        taken.close(() => {
          resolve();
        }),
      );
    }
  });
});
