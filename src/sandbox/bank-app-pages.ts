import type { AuthenticationRequestRecord } from './requests.js';

/**
 * The bank app's server-rendered pages: sign-in, the pending requests with Approve/Deny, and the
 * history. Every value from a record goes through escapeHtml.
 */

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

export function page(title: string, body: string): string {
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

export function loginPage(next: string, failed: boolean): string {
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

function requestCard(request: AuthenticationRequestRecord, highlight: boolean): string {
  const amount = request.amount === '' ? 'no amount' : `${escapeHtml(request.currency)} ${escapeHtml(request.amount)}`;
  const actions =
    request.status === 'pending'
      ? `<div class="actions">
  <form method="post" action="/requests/${escapeHtml(request.id)}/approve"><button class="primary" type="submit">Approve</button></form>
  <form method="post" action="/requests/${escapeHtml(request.id)}/deny"><button type="submit">Deny</button></form>
</div>`
      : `<p class="status status-${request.status}">${request.status}</p>`;
  return `<article class="card${highlight ? ' highlight' : ''}" aria-labelledby="req-${escapeHtml(request.id)}">
  <h2 id="req-${escapeHtml(request.id)}">${escapeHtml(request.clientName)}</h2>
  <p class="amount">${amount}</p>
  <dl>
    <dt>To</dt><dd>${escapeHtml(request.creditorName || '—')}</dd>
    <dt>Code</dt><dd><code>${escapeHtml(request.bindingMessage || '—')}</code></dd>
    <dt>Requested</dt><dd><time datetime="${request.createdAt}">${request.createdAt.slice(11, 19)} UTC</time></dd>
  </dl>
  <p class="hint">Approve only if the shop shows the same code.</p>
  ${actions}
</article>`;
}

/** When a request left `pending`: its decision, or its expiry. */
function historyItem(request: AuthenticationRequestRecord): string {
  const at = request.status === 'expired' ? request.expiresAt : (request.decidedAt ?? request.createdAt);
  const amount = request.amount === '' ? 'no amount' : `${escapeHtml(request.currency)} ${escapeHtml(request.amount)}`;
  const code = request.bindingMessage === '' ? '' : ` · <code>${escapeHtml(request.bindingMessage)}</code>`;
  const when = `${at.slice(0, 10)} ${at.slice(11, 19)} UTC`;
  return `<li><span><strong>${escapeHtml(request.clientName)}</strong> · ${amount}${code}<br>
<time datetime="${escapeHtml(at)}">${escapeHtml(when)}</time></span> <span class="status status-${request.status}">${request.status}</span></li>`;
}

export function homePage(login: string, records: AuthenticationRequestRecord[], focusId?: string): string {
  const pending = records.filter((record) => record.status === 'pending');
  const history = records.filter((record) => record.status !== 'pending').slice(0, 20);
  return page(
    'Requests',
    `<div class="who"><span>Signed in as <strong>${escapeHtml(login)}</strong></span>
<form method="post" action="/logout"><button type="submit" class="link">Sign out</button></form></div>
<section aria-labelledby="pending-h" data-pending-count="${pending.length}">
<h1 id="pending-h">Pending requests</h1>
${pending.length === 0 ? '<p class="empty">Nothing to approve. New requests appear here.</p>' : pending.map((record) => requestCard(record, record.id === focusId)).join('\n')}
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
