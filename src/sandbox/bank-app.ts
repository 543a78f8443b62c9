import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { SandboxUser } from './accounts.js';
import { homePage, loginPage, page } from './bank-app-pages.js';
import type { Decide } from './decisions.js';
import type { SandboxKeys } from './keys.js';
import { toPublicRequest } from './requests.js';
import type { RequestStore } from './requests.js';

/**
 * The bank app, i.e. the customer's phone (CIBA Core §1: the authentication device): a small
 * server-rendered page on plain HTTP bound to loopback. Sign-in is a form POST that sets an
 * HttpOnly, SameSite=Strict session cookie; every POST also checks Origin when the browser sends
 * one. That is CSRF-safe enough for a sandbox on 127.0.0.1; it is not a banking app.
 */
export interface BankAppDeps {
  redis: Redis;
  keys: SandboxKeys;
  requests: RequestStore;
  users: SandboxUser[];
  appOrigin: () => string;
  decide: Decide;
}

const SESSION_COOKIE = 'bank_session';
const SESSION_SECONDS = 8 * 3600;
const STATIC: Record<string, string> = { '/app.css': 'text/css', '/app.js': 'text/javascript' };
const REQUEST_ID = '[A-Za-z0-9_-]{1,64}';
const DECISION_PATH = new RegExp(`^/requests/(${REQUEST_ID})/(approve|deny)$`);
const DETAIL_PATH = new RegExp(`^/requests/(${REQUEST_ID})$`);

function asset(name: string): string {
  return readFileSync(new URL(`./public/${name}`, import.meta.url), 'utf8');
}

function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string): Buffer => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 8192) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function html(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'self'; form-action 'self'; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(body);
}

function redirect(res: ServerResponse, location: string, headers: Record<string, string> = {}): void {
  res.writeHead(303, { location, 'cache-control': 'no-store', ...headers });
  res.end();
}

/** Only same-app relative paths, so the sign-in form cannot be turned into an open redirect. */
function safeNext(value: string | null): string {
  return value !== null && DETAIL_PATH.test(value) ? value : '/';
}

/** What the route handlers share: the deps, the users by login and the static assets read once. */
interface BankAppContext extends BankAppDeps {
  userByLogin: ReadonlyMap<string, SandboxUser>;
  assets: ReadonlyMap<string, string>;
}

/** The signed-in customer's login, from the session cookie. */
async function sessionLogin(context: BankAppContext, req: IncomingMessage): Promise<string | undefined> {
  const cookie = (req.headers.cookie ?? '')
    .split(';')
    .map((part) => part.trim())
    .find((part) => part.startsWith(`${SESSION_COOKIE}=`));
  if (cookie === undefined) return undefined;
  const login = await context.redis.get(context.keys.appSession(cookie.slice(SESSION_COOKIE.length + 1)));
  return login !== null && context.userByLogin.has(login) ? login : undefined;
}

/** POST /login: a session for the right password, the sign-in page again for a wrong one. */
async function signIn(context: BankAppContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const form = await readForm(req);
  const user = context.userByLogin.get(form.get('login') ?? '');
  const next = safeNext(form.get('next'));
  if (user === undefined || !sameSecret(user.password, form.get('password') ?? '')) {
    html(res, 401, loginPage(next, true));
    return;
  }
  const sessionId = randomBytes(24).toString('base64url');
  await context.redis.set(context.keys.appSession(sessionId), user.login, 'EX', SESSION_SECONDS);
  redirect(res, next, {
    'set-cookie': `${SESSION_COOKIE}=${sessionId}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_SECONDS}`,
  });
}

/** Without a session: the sign-in page for pages, 401 for the JSON list, home for the rest. */
function answerSignedOut(req: IncomingMessage, res: ServerResponse, path: string): void {
  if (req.method === 'GET' && (path === '/' || path.startsWith('/requests/'))) {
    html(res, 200, loginPage(safeNext(path), false));
  } else if (path === '/api/requests') {
    res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"sign_in"}');
  } else redirect(res, '/');
}

/** POST /requests/{id}/approve|deny: a customer decides only their own requests. */
async function decideRequest(
  context: BankAppContext,
  res: ServerResponse,
  login: string,
  match: RegExpExecArray,
): Promise<void> {
  const [, id = '', decision] = match;
  const record = await context.requests.get(id);
  if (record?.login === login) await context.decide(record.id, decision === 'approve' ? 'approve' : 'deny');
  redirect(res, '/');
}

/** GET /api/requests: the signed-in customer's requests as JSON (the page's refresh). */
async function listRequests(context: BankAppContext, res: ServerResponse, login: string): Promise<void> {
  const records = await context.requests.list(login);
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ requests: records.map(toPublicRequest) }));
}

/** Static assets and the sign-in form need no session; POSTs must come from the app's own origin. */
async function routePublic(context: BankAppContext, req: IncomingMessage, res: ServerResponse, path: string) {
  const type = STATIC[path];
  if (req.method === 'GET' && type !== undefined) {
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-cache' });
    res.end(context.assets.get(path));
    return true;
  }
  if (req.method !== 'POST') return false;
  // SameSite=Strict already keeps the cookie off cross-site posts; Origin is a second check.
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null' && origin !== context.appOrigin()) {
    html(res, 403, page('Forbidden', '<h1>Forbidden</h1><p>Cross-site request refused.</p>'));
    return true;
  }
  if (path !== '/login') return false;
  await signIn(context, req, res);
  return true;
}

async function routeSignedIn(
  context: BankAppContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  login: string,
): Promise<void> {
  if (req.method === 'POST' && path === '/logout') {
    redirect(res, '/', { 'set-cookie': `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` });
    return;
  }
  const decision = DECISION_PATH.exec(path);
  if (req.method === 'POST' && decision !== null) return decideRequest(context, res, login, decision);
  if (req.method === 'GET' && path === '/api/requests') return listRequests(context, res, login);
  const detail = DETAIL_PATH.exec(path);
  if (req.method === 'GET' && (path === '/' || detail !== null)) {
    html(res, 200, homePage(login, await context.requests.list(login), detail?.[1]));
    return;
  }
  html(res, 404, page('Not found', '<h1>Not found</h1><p><a href="/">Back to requests</a></p>'));
}

async function route(context: BankAppContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (await routePublic(context, req, res, path)) return;
  const login = await sessionLogin(context, req);
  if (login === undefined) answerSignedOut(req, res, path);
  else await routeSignedIn(context, req, res, path, login);
}

export function createBankApp(deps: BankAppDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const context: BankAppContext = {
    ...deps,
    userByLogin: new Map(deps.users.map((user) => [user.login, user])),
    assets: new Map(Object.keys(STATIC).map((path) => [path, asset(path.slice(1))])),
  };
  return async (req, res) => {
    try {
      await route(context, req, res);
    } catch {
      if (!res.headersSent) html(res, 500, page('Error', '<h1>Something went wrong</h1><p><a href="/">Back</a></p>'));
      else res.end();
    }
  };
}
