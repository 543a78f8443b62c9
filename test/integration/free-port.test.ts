import { createServer } from 'node:net';
import { ephemeralPortRange, FREE_PORT_POOL, freePort, freePortPoolStart } from '../support/system.js';

/**
 * The tests' free ports (test/support/system.ts): a port handed out is bound later (a service's PORT,
 * a child process), so it must be one that no listen(0) or outgoing connection on the machine can
 * take in between, i.e. outside the kernel's ephemeral range, and never handed out twice in a row.
 */
describe('freePort', () => {
  const { low, high } = ephemeralPortRange(); // this machine's: 32768-60999 here, other on another host

  test('when ports are handed out, then none is in the ephemeral range, each differs, and each can be bound', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 20; i++) ports.push(await freePort());
    expect(ports.filter((p) => p >= low && p <= high)).toEqual([]);
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
      // a whole block: round to the taken one
      for (let i = 0; i < FREE_PORT_POOL.blockSize; i++) next.push(await freePort());
      expect(next).not.toContain(port);
    } finally {
      await new Promise<void>((resolve) =>
        taken.close(() => {
          resolve();
        }),
      );
    }
  });

  test('when the ephemeral range reaches into the usual pool, then the pool moves below or above it', () => {
    const pool = (low: number, high: number) => {
      const from = freePortPoolStart({ low, high });
      return [from, from + FREE_PORT_POOL.size - 1];
    };
    expect(pool(32_768, 60_999)).toEqual([20_000, 31_999]); // Linux's default
    expect(pool(40_000, 60_999)).toEqual([20_000, 31_999]);
    expect(pool(30_000, 60_999)).toEqual([18_000, 29_999]); // right below it
    expect(pool(15_000, 40_000)).toEqual([40_001, 52_000]); // no room below (the clusters' ports): above it
    expect(pool(1024, 25_000)).toEqual([25_001, 37_000]);
    expect(() => pool(10_000, 65_535)).toThrow(/no 12000 test ports outside the ephemeral range 10000-65535/);
  });
});
