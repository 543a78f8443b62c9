// Sandbox Bank app: reloads the page when the number of pending requests changes, so a new
// request shows up without a manual refresh. The page works without this script.
(function () {
  var section = document.querySelector('[data-pending-count]');
  if (!section) return;
  var known = Number(section.getAttribute('data-pending-count'));
  setInterval(function () {
    if (document.activeElement && document.activeElement.tagName === 'INPUT') return;
    fetch('/api/requests', { credentials: 'same-origin' })
      .then(function (r) {
        return r.ok ? r.json() : null;
      })
      .then(function (body) {
        if (!body) return;
        var pending = body.requests.filter(function (r) {
          return r.status === 'pending';
        }).length;
        if (pending !== known) window.location.reload();
      })
      .catch(function () {});
  }, 2000);
})();
