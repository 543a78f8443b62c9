import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { SandboxKeys } from './keys.js';
import type { SandboxUser } from './accounts.js';
import { toPublicRequest } from './requests.js';
import type { AuthenticationRequestRecord, RequestStore } from './requests.js';

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
  decide: (id: string, decision: 'approve' | 'deny') => Promise<boolean>;
}

const SESSION_COOKIE = 'bank_session';
const SESSION_SECONDS = 8 * 3600;
const STATIC: Record<string, string> = { '/app.css': 'text/css', '/app.js': 'text/javascript' };

function asset(name: string): string {
  return readFileSync(new URL(`./public/${name}`, import.meta.url), 'utf8');
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sameSecret(a: string, b: string): boolean {
  const digest = (v: string): Buffer => createHash('sha256').update(v).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Sandbox Bank</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header class="bar"><span class="logo" aria-hidden="true">◆</span> Sandbox Bank</header>
<main id="main">
${body}
</main>
</body>
</html>`;
}

function loginPage(next: string, failed: boolean): string {
  return page(
    'Sign in',
    `<h1>Sign in</h1>
${failed ? '<p class="error" role="alert">Wrong login or password.</p>' : ''}
<form method="post" action="/login" class="card">
  <input type="hidden" name="next" value="${escapeHtml(next)}">
  <label for="login">Login</label>
  <input id="login" name="login" autocomplete="username" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit" class="primary">Sign in</button>
</form>`,
  );
}

function requestCard(r: AuthenticationRequestRecord, highlight: boolean): string {
  const amount = r.amount === '' ? 'no amount' : `${escapeHtml(r.currency)} ${escapeHtml(r.amount)}`;
  const actions =
    r.status === 'pending'
      ? `<div class="actions">
  <form method="post" action="/requests/${escapeHtml(r.id)}/approve"><button class="primary" type="submit">Approve</button></form>
  <form method="post" action="/requests/${escapeHtml(r.id)}/deny"><button type="submit">Deny</button></form>
</div>`
      : `<p class="status status-${r.status}">${r.status}</p>`;
  return `<article class="card${highlight ? ' highlight' : ''}" aria-labelledby="req-${escapeHtml(r.id)}">
  <h2 id="req-${escapeHtml(r.id)}">${escapeHtml(r.clientName)}</h2>
  <p class="amount">${amount}</p>
  <dl>
    <dt>To</dt><dd>${escapeHtml(r.creditorName || '—')}</dd>
    <dt>Code</dt><dd><code>${escapeHtml(r.bindingMessage || '—')}</code></dd>
    <dt>Requested</dt><dd><time datetime="${r.createdAt}">${r.createdAt.slice(11, 19)} UTC</time></dd>
  </dl>
  <p class="hint">Approve only if the shop shows the same code.</p>
  ${actions}
</article>`;
}

/** When a request left `pending`: its decision, or its expiry. */
function historyItem(r: AuthenticationRequestRecord): string {
  const at = r.status === 'expired' ? r.expiresAt : (r.decidedAt ?? r.createdAt);
  const amount = r.amount === '' ? 'no amount' : `${escapeHtml(r.currency)} ${escapeHtml(r.amount)}`;
  const code = r.bindingMessage === '' ? '' : ` · <code>${escapeHtml(r.bindingMessage)}</code>`;
  const when = `${at.slice(0, 10)} ${at.slice(11, 19)} UTC`;
  return `<li><span><strong>${escapeHtml(r.clientName)}</strong> · ${amount}${code}<br>
<time datetime="${escapeHtml(at)}">${escapeHtml(when)}</time></span> <span class="status status-${r.status}">${r.status}</span></li>`;
}

function homePage(login: string, records: AuthenticationRequestRecord[], focusId?: string): string {
  const pending = records.filter((r) => r.status === 'pending');
  const history = records.filter((r) => r.status !== 'pending').slice(0, 20);
  return page(
    'Requests',
    `<div class="who"><span>Signed in as <strong>${escapeHtml(login)}</strong></span>
<form method="post" action="/logout"><button type="submit" class="link">Sign out</button></form></div>
<section aria-labelledby="pending-h" data-pending-count="${pending.length}">
<h1 id="pending-h">Pending requests</h1>
${pending.length === 0 ? '<p class="empty">Nothing to approve. New requests appear here.</p>' : pending.map((r) => requestCard(r, r.id === focusId)).join('\n')}
</section>
<section aria-labelledby="history-h">
<h2 id="history-h">History</h2>
${
  history.length === 0
    ? '<p class="empty">No earlier requests.</p>'
    : `<ul class="history">${history.map(historyItem).join('')}</ul>`
}
</section>`,
  );
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
  return value !== null && /^\/requests\/[A-Za-z0-9_-]{1,64}$/.test(value) ? value : '/';
}

export function createBankApp(deps: BankAppDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const users = new Map(deps.users.map((u) => [u.login, u]));
  const assets = new Map(Object.keys(STATIC).map((path) => [path, asset(path.slice(1))]));

  async function sessionLogin(req: IncomingMessage): Promise<string | undefined> {
    const cookie = (req.headers.cookie ?? '')
      .split(';')
      .map((c) => c.trim())
      .find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    if (cookie === undefined) return undefined;
    const login = await deps.redis.get(deps.keys.appSession(cookie.slice(SESSION_COOKIE.length + 1)));
    return login !== null && users.has(login) ? login : undefined;
  }

  async function signIn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readForm(req);
    const user = users.get(form.get('login') ?? '');
    const next = safeNext(form.get('next'));
    if (user === undefined || !sameSecret(user.password, form.get('password') ?? '')) {
      html(res, 401, loginPage(next, true));
      return;
    }
    const sessionId = randomBytes(24).toString('base64url');
    await deps.redis.set(deps.keys.appSession(sessionId), user.login, 'EX', SESSION_SECONDS);
    redirect(res, next, {
      'set-cookie': `${SESSION_COOKIE}=${sessionId}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_SECONDS}`,
    });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const type = STATIC[path];
    if (req.method === 'GET' && type !== undefined) {
      res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-cache' });
      res.end(assets.get(path));
      return;
    }
    if (req.method === 'POST') {
      // SameSite=Strict already keeps the cookie off cross-site posts; Origin is a second check.
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== 'null' && origin !== deps.appOrigin()) {
        html(res, 403, page('Forbidden', '<h1>Forbidden</h1><p>Cross-site request refused.</p>'));
        return;
      }
      if (path === '/login') return signIn(req, res);
    }
    const login = await sessionLogin(req);
    if (login === undefined) {
      if (req.method === 'GET' && (path === '/' || path.startsWith('/requests/'))) {
        html(res, 200, loginPage(safeNext(path), false));
      } else if (path === '/api/requests') {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"sign_in"}');
      } else redirect(res, '/');
      return;
    }
    if (req.method === 'POST' && path === '/logout') {
      redirect(res, '/', { 'set-cookie': `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` });
      return;
    }
    const decision = /^\/requests\/([A-Za-z0-9_-]{1,64})\/(approve|deny)$/.exec(path);
    if (req.method === 'POST' && decision?.[1] !== undefined) {
      const record = await deps.requests.get(decision[1]);
      // A customer decides only their own requests.
      if (record?.login === login) await deps.decide(record.id, decision[2] === 'approve' ? 'approve' : 'deny');
      redirect(res, '/');
      return;
    }
    if (req.method === 'GET' && path === '/api/requests') {
      const records = await deps.requests.list(login);
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ requests: records.map(toPublicRequest) }));
      return;
    }
    const detail = /^\/requests\/([A-Za-z0-9_-]{1,64})$/.exec(path);
    if (req.method === 'GET' && (path === '/' || detail !== null)) {
      html(res, 200, homePage(login, await deps.requests.list(login), detail?.[1]));
      return;
    }
    html(res, 404, page('Not found', '<h1>Not found</h1><p><a href="/">Back to requests</a></p>'));
  }

  return async (req, res) => {
    try {
      await route(req, res);
    } catch {
      if (!res.headersSent) html(res, 500, page('Error', '<h1>Something went wrong</h1><p><a href="/">Back</a></p>'));
      else res.end();
    }
  };
}
