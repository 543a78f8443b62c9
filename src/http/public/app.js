// Demo storefront: catalog → cart → "Pay by bank" (CIBA) → waiting → result. No build step, no
// external assets; the service's CSP allows scripts from 'self' only.
'use strict';
(function () {
  var POLL_MS = 2000;
  var TERMINAL = { succeeded: true, failed: true, canceled: true };
  var FAILURES = {
    access_denied: 'You declined the payment in your bank app.',
    expired: 'The request in your bank app expired before it was approved.',
    unknown_bank_user: "Your bank doesn't know this login. Check the name you sign in to your bank with.",
    bank_rejected: 'Your bank turned the transfer down, for example because of a limit on your account.',
    bank_error: 'Your bank could not carry out the transfer just now.',
    invalid_id_token: "We could not verify your bank's answer, so we stopped before any money moved.",
    authorization_mismatch: "Your bank's approval did not match this payment, so we stopped before any money moved.",
    authorization_error: 'Your bank ended the request without an approval.',
  };
  var STATUS_TEXT = {
    pending_authorization: 'Waiting for your approval…',
    authorized: 'Approved. Sending the transfer to your bank…',
    processing: 'Approved. Your bank is processing the transfer…',
  };

  var state = {
    catalog: null,
    cart: [], // [{ sku, quantity }] in the order added
    attempt: null, // { body, key } of the last checkout not yet answered with 202
    payment: null, // { id, secret, amount, currency, expiresAt }
    source: null,
    pollTimer: null,
    countdownTimer: null,
  };

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === 'text') node.textContent = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(child);
    });
    return node;
  }

  /** Minor units (1290) to a localized price (€12.90), with the currency's own number of decimals. */
  function formatAmount(minor, currency) {
    var format = new Intl.NumberFormat(document.documentElement.lang || 'en', {
      style: 'currency',
      currency: currency.toUpperCase(),
    });
    var digits = format.resolvedOptions().maximumFractionDigits;
    return format.format(minor / Math.pow(10, digits));
  }

  function product(sku) {
    return state.catalog.items.find(function (i) {
      return i.sku === sku;
    });
  }

  function cartTotal() {
    return state.cart.reduce(function (sum, line) {
      return sum + product(line.sku).unit_amount * line.quantity;
    }, 0);
  }

  // ---- screens ----

  function show(screenId) {
    ['shop-screen', 'waiting-screen', 'success-screen', 'failure-screen'].forEach(function (id) {
      $(id).hidden = id !== screenId;
    });
    var heading = $(screenId).querySelector('h1');
    heading.focus();
    window.scrollTo(0, 0);
  }

  // ---- catalog and cart ----

  function loadCatalog() {
    fetch('/catalog', { headers: { accept: 'application/json' } })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (catalog) {
        state.catalog = catalog;
        $('catalog-status').textContent = '';
        $('catalog-status').hidden = true;
        renderProducts();
        renderCart();
      })
      .catch(function () {
        $('catalog-status').textContent = 'The catalog could not be loaded. Reload the page to try again.';
      });
  }

  function renderProducts() {
    var list = $('products');
    list.textContent = '';
    state.catalog.items.forEach(function (item) {
      var nameId = 'product-' + item.sku;
      var add = el('button', {
        type: 'button',
        'data-testid': 'add-' + item.sku,
        'aria-describedby': nameId,
        text: 'Add to cart',
      });
      add.addEventListener('click', function () {
        addToCart(item.sku);
      });
      list.appendChild(
        el('li', { class: 'product card', 'data-testid': 'product-' + item.sku }, [
          el('h3', { id: nameId, text: item.name }),
          el('p', { class: 'muted small', text: item.description || '' }),
          el('p', { class: 'price', text: formatAmount(item.unit_amount, state.catalog.currency) }),
          add,
        ]),
      );
    });
  }

  function findLine(sku) {
    return state.cart.find(function (l) {
      return l.sku === sku;
    });
  }

  function addToCart(sku) {
    var line = findLine(sku);
    if (line) line.quantity = Math.min(100, line.quantity + 1);
    else state.cart.push({ sku: sku, quantity: 1 });
    renderCart();
    announce(product(sku).name + ' added. ' + cartSummary());
  }

  function setQuantity(sku, quantity) {
    var line = findLine(sku);
    if (!line) return;
    if (!(quantity >= 1)) {
      removeFromCart(sku);
      return;
    }
    line.quantity = Math.min(100, Math.floor(quantity));
    renderCart();
    announce(cartSummary());
  }

  function removeFromCart(sku) {
    state.cart = state.cart.filter(function (l) {
      return l.sku !== sku;
    });
    renderCart();
    announce(product(sku).name + ' removed. ' + cartSummary());
    $('cart-h').focus();
  }

  function cartSummary() {
    if (state.cart.length === 0) return 'Your cart is empty.';
    return 'Total ' + formatAmount(cartTotal(), state.catalog.currency) + '.';
  }

  function announce(text) {
    $('cart-live').textContent = text;
  }

  function stepButton(label, sku, delta, describedBy) {
    var button = el('button', {
      type: 'button',
      class: 'step',
      'aria-label': label,
      'aria-describedby': describedBy,
      text: delta > 0 ? '+' : '−',
    });
    button.addEventListener('click', function () {
      setQuantity(sku, findLine(sku).quantity + delta);
    });
    return button;
  }

  function renderCart() {
    var lines = $('cart-lines');
    lines.textContent = '';
    state.cart.forEach(function (line) {
      var item = product(line.sku);
      var nameId = 'cart-name-' + line.sku;
      var qtyId = 'qty-' + line.sku;
      var qty = el('input', {
        id: qtyId,
        type: 'number',
        min: '1',
        max: '100',
        inputmode: 'numeric',
        value: String(line.quantity),
        'data-testid': 'qty-' + line.sku,
        class: 'qty',
      });
      qty.addEventListener('change', function () {
        setQuantity(line.sku, Number(qty.value));
      });
      var remove = el('button', {
        type: 'button',
        class: 'link',
        'data-testid': 'remove-' + line.sku,
        'aria-describedby': nameId,
        text: 'Remove',
      });
      remove.addEventListener('click', function () {
        removeFromCart(line.sku);
      });
      lines.appendChild(
        el('li', { class: 'cart-line', 'data-testid': 'cart-line-' + line.sku }, [
          el('span', { id: nameId, class: 'cart-name', text: item.name }),
          el('span', { class: 'qty-group' }, [
            stepButton('One less', line.sku, -1, nameId),
            el('label', { for: qtyId, class: 'visually-hidden', text: 'Quantity of ' + item.name }),
            qty,
            stepButton('One more', line.sku, 1, nameId),
          ]),
          el('span', {
            class: 'line-amount',
            text: formatAmount(item.unit_amount * line.quantity, state.catalog.currency),
          }),
          remove,
        ]),
      );
    });
    var empty = state.cart.length === 0;
    $('cart-empty').hidden = !empty;
    $('cart-total-row').hidden = empty;
    $('pay-form').hidden = empty;
    $('cart-total').textContent = empty ? '' : formatAmount(cartTotal(), state.catalog.currency);
  }

  // ---- checkout ----

  function checkoutBody() {
    var hint = $('login-hint').value.trim() || $('login-hint').placeholder;
    return JSON.stringify({
      items: state.cart.map(function (l) {
        return { sku: l.sku, quantity: l.quantity };
      }),
      login_hint: hint,
    });
  }

  /** The same Idempotency-Key for a retry of the same cart, so a lost answer never makes a second payment. */
  function idempotencyKey(body) {
    if (!state.attempt || state.attempt.body !== body) state.attempt = { body: body, key: crypto.randomUUID() };
    return state.attempt.key;
  }

  function showCheckoutError(message, details) {
    var box = $('checkout-error');
    box.textContent = '';
    box.appendChild(el('p', { text: message }));
    if (details && details.length) {
      box.appendChild(
        el(
          'ul',
          {},
          details.map(function (d) {
            return el('li', { text: d });
          }),
        ),
      );
    }
    box.hidden = false;
  }

  function problemMessage(res, problem) {
    var text = (problem && problem.detail) || 'The payment could not be started (HTTP ' + res.status + ').';
    var retryAfter = Number(res.headers.get('retry-after'));
    if ((res.status === 429 || res.status === 503) && retryAfter > 0) {
      text += ' Try again in ' + retryAfter + (retryAfter === 1 ? ' second.' : ' seconds.');
    }
    return text;
  }

  function submitCheckout(event) {
    event.preventDefault();
    var button = $('pay-button');
    if (button.disabled || state.cart.length === 0) return;
    var body = checkoutBody();
    button.disabled = true;
    button.textContent = 'Contacting your bank…';
    $('checkout-error').hidden = true;
    fetch('/checkout', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        'idempotency-key': idempotencyKey(body),
      },
      body: body,
    })
      .then(function (res) {
        return res.text().then(function (text) {
          var json = null;
          try {
            json = text ? JSON.parse(text) : null;
          } catch (e) {
            json = null;
          }
          if (res.status === 202 && json) {
            state.attempt = null;
            startWaiting(json);
            return;
          }
          var details =
            json && Array.isArray(json.errors)
              ? json.errors.map(function (e) {
                  return e.path + ': ' + e.message;
                })
              : [];
          showCheckoutError(problemMessage(res, json), details);
        });
      })
      .catch(function () {
        showCheckoutError(
          'We could not reach the shop. Check your connection and press "Pay by bank" again; you will not be charged twice.',
        );
      })
      .then(function () {
        button.disabled = false;
        button.textContent = 'Pay by bank';
      });
  }

  // ---- waiting for the bank ----

  function authHeaders() {
    return { authorization: 'Bearer ' + state.payment.secret, accept: 'application/json' };
  }

  function startWaiting(payment) {
    state.payment = {
      id: payment.id,
      secret: payment.client_secret,
      amount: payment.amount,
      currency: payment.currency,
      expiresAt: Date.parse(payment.expires_at),
    };
    $('waiting-amount').textContent = formatAmount(payment.amount, payment.currency);
    $('binding-message').textContent = payment.binding_message;
    $('payment-status').textContent = STATUS_TEXT.pending_authorization;
    $('cancel-button').disabled = false;
    show('waiting-screen');
    tickCountdown();
    state.countdownTimer = setInterval(tickCountdown, 1000);
    listen();
  }

  function tickCountdown() {
    var left = Math.max(0, Math.round((state.payment.expiresAt - Date.now()) / 1000));
    var text;
    if (left > 0) {
      var m = Math.floor(left / 60);
      var s = left % 60;
      text = 'The request expires in ' + m + ':' + (s < 10 ? '0' : '') + s + '.';
    } else {
      text = 'The request has expired.';
    }
    $('countdown').textContent = text;
  }

  /** Live status over server-sent events; polling when the stream is not available. */
  function listen() {
    if (!window.EventSource) {
      startPolling();
      return;
    }
    var url =
      '/payments/' +
      encodeURIComponent(state.payment.id) +
      '/events?client_secret=' +
      encodeURIComponent(state.payment.secret);
    var source = new EventSource(url);
    state.source = source;
    Object.keys(STATUS_TEXT)
      .concat(Object.keys(TERMINAL))
      .forEach(function (status) {
        source.addEventListener('payment.' + status, function (event) {
          try {
            update(JSON.parse(event.data));
          } catch (e) {
            // A malformed event is ignored; the next one or the poll brings the truth.
          }
        });
      });
    source.onerror = function () {
      if (state.source !== source) return;
      source.close();
      state.source = null;
      startPolling();
    };
  }

  function startPolling() {
    if (!state.payment || state.pollTimer) return;
    var id = state.payment.id;
    var poll = function () {
      fetch('/payments/' + encodeURIComponent(id), { headers: authHeaders(), cache: 'no-store' })
        .then(function (res) {
          return res.ok ? res.json() : null;
        })
        .then(function (payment) {
          if (payment) update(payment);
        })
        .catch(function () {
          // Offline for a moment: the next poll tries again.
        })
        .then(function () {
          if (state.pollTimer && state.payment && state.payment.id === id) state.pollTimer = setTimeout(poll, POLL_MS);
        });
    };
    state.pollTimer = setTimeout(poll, 0);
  }

  function stopWatching() {
    if (state.source) state.source.close();
    state.source = null;
    clearTimeout(state.pollTimer);
    state.pollTimer = null;
    clearInterval(state.countdownTimer);
    state.countdownTimer = null;
  }

  function update(payment) {
    if (!state.payment || payment.id !== state.payment.id) return;
    if (!TERMINAL[payment.status]) {
      var text = STATUS_TEXT[payment.status];
      if (text && $('payment-status').textContent !== text) $('payment-status').textContent = text;
      if (payment.status !== 'pending_authorization') $('cancel-button').disabled = true;
      return;
    }
    stopWatching();
    state.payment = null;
    if (payment.status === 'succeeded') showSuccess(payment);
    else
      showFailure(
        payment.status === 'canceled'
          ? 'You canceled the payment.'
          : FAILURES[payment.failure_code] || 'Your bank did not complete the payment.',
      );
  }

  function cancelPayment() {
    if (!state.payment) return;
    var button = $('cancel-button');
    button.disabled = true;
    fetch('/payments/' + encodeURIComponent(state.payment.id) + '/cancel', { method: 'POST', headers: authHeaders() })
      .then(function (res) {
        return res.json().then(function (json) {
          if (res.ok) update(json);
          else $('payment-status').textContent = json.detail || 'The payment can no longer be canceled.';
        });
      })
      .catch(function () {
        button.disabled = false;
        $('payment-status').textContent = 'We could not reach the shop to cancel. Try again.';
      });
  }

  // ---- results ----

  function showSuccess(payment) {
    $('success-amount').textContent = formatAmount(payment.amount, payment.currency);
    $('success-reference').textContent = 'Order ' + payment.id;
    state.cart = [];
    renderCart();
    show('success-screen');
  }

  function showFailure(message) {
    $('failure-message').textContent = message;
    show('failure-screen');
  }

  function backToShop() {
    show('shop-screen');
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('pay-form').addEventListener('submit', submitCheckout);
    $('cancel-button').addEventListener('click', cancelPayment);
    $('try-again').addEventListener('click', backToShop);
    $('shop-again').addEventListener('click', backToShop);
    loadCatalog();
  });
})();
