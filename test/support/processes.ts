import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './system.js';

/**
 * The service as real processes (`node dist/main.js`), for the tests that kill, restart and signal
 * them: chaos, Redis restart, SIGTERM drain. `npm test` builds dist before jest runs.
 */
export const MAIN_JS = join(process.cwd(), 'dist', 'main.js');

export function assertBuilt(): void {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run \`npm run build\` first (npm test does)`);
}

export { serviceEnv } from './service-env.js';

export interface ServiceProcess {
  name: string;
  role: 'api' | 'worker' | 'all';
  child: ChildProcess;
  /** Every line it wrote (pino JSON on stdout, anything on stderr). */
  lines: string[];
  url: string | null;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
}

/** Starts `node dist/main.js`; resolves once it logged "ciba-checkout started". */
export async function spawnService(
  name: string,
  role: 'api' | 'worker' | 'all',
  env: Record<string, string>,
  sink: string[] = [],
): Promise<ServiceProcess> {
  assertBuilt();
  const port = role === 'worker' ? '0' : String(await freePort());
  const child = spawn(process.execPath, [MAIN_JS], {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? '', ...env, ROLE: role, PORT: port },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let exitedFlag = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedFlag = true;
      resolve({ code, signal });
    });
  });
  let started: () => void = () => undefined;
  const startedP = new Promise<void>((resolve) => {
    started = resolve;
  });
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      lines.push(line);
      sink.push(line);
      if (line.includes('ciba-checkout started')) started();
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const result = await Promise.race([
    startedP.then(() => 'started' as const),
    exited.then(() => 'exited' as const),
    new Promise<'timeout'>((r) => {
      setTimeout(() => {
        r('timeout');
      }, 30_000).unref();
    }),
  ]);
  if (result !== 'started') {
    child.kill('SIGKILL');
    throw new Error(`${name} did not start (${result}):\n${lines.slice(-10).join('\n')}`);
  }
  return {
    name,
    role,
    child,
    lines,
    url: role === 'worker' ? null : `http://127.0.0.1:${port}`,
    exited,
    alive: () => !exitedFlag,
  };
}

/**
 * Runs `node dist/main.js` that is expected to stop at start-up (a refused configuration): its exit
 * code and every line it wrote; SIGKILLed if it is still running after 40 s (a refusal may wait out
 * a crashed process's key-holder entry, KEY_HOLDER_TTL_MS).
 */
export function runServiceToExit(
  role: 'api' | 'worker' | 'all',
  env: Record<string, string>,
): Promise<{ code: number | null; lines: string[] }> {
  assertBuilt();
  const child = spawn(process.execPath, [MAIN_JS], {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? '', ...env, ROLE: role, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, lines: output.split('\n').filter((l) => l.length > 0) });
    });
  });
}

/** SIGKILLs whatever is still running and waits for it to be gone. */
export async function killAll(processes: Iterable<ServiceProcess>): Promise<void> {
  await Promise.all(
    [...processes].map(async (p) => {
      if (p.alive()) p.child.kill('SIGKILL');
      await p.exited;
    }),
  );
}
