import { request } from 'undici';

/** Small JSON client for the service under test. */
export async function api(
  base: string,
  method: 'GET' | 'POST',
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; raw?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: any }> {
  const res = await request(`${base}${path}`, {
    method,
    headers: {
      ...(options.body !== undefined || options.raw !== undefined ? { 'content-type': 'application/json' } : {}),
      ...options.headers,
    },
    ...(options.raw !== undefined
      ? { body: options.raw }
      : options.body !== undefined
        ? { body: JSON.stringify(options.body) }
        : {}),
  });
  const text = await res.body.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: res.statusCode, headers: res.headers, json };
}

/**
 * Polls until `check` returns a value, or fails after `timeoutMs`; `what` names the condition in
 * the error (a function: described as things stand when it gives up). Every wait of the tests is
 * one of these, on a condition, never a fixed sleep. `everyMs`: how long the system runs between
 * two looks (longer for a check that costs the system under test real work).
 */
export async function waitFor<T>(
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 15_000,
  what: string | (() => string) = 'condition',
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

export async function waitForStatus(
  base: string,
  id: string,
  secret: string,
  statuses: string[],
  timeoutMs = 15_000,
): Promise<any> {
  return waitFor(
    async () => {
      const r = await api(base, 'GET', `/payments/${id}`, { headers: { authorization: `Bearer ${secret}` } });
      return statuses.includes(r.json?.status) ? r.json : undefined;
    },
    timeoutMs,
    `payment ${id} to reach ${statuses.join('|')}`,
  );
}
