// onramp's hosted activation page (seed 004): reads the token from the link with the seed's own
// line, posts it to /v1/auth/signup-activation at once, and shows the outcome.
(function () {
  'use strict';
  var t = JSON.parse(document.getElementById('strings').textContent);
  var token = new URLSearchParams(window.location.hash).get('token');
  // Links whose fragment has no leading separator (#token=…) and query-only links.
  token = token || new URLSearchParams(window.location.hash.slice(1)).get('token')
    || new URLSearchParams(window.location.search).get('token');

  function show(state, title, text) {
    document.getElementById('icon').className = 'icon ' + state;
    document.getElementById('icon').textContent = state === 'ok' ? '✓' : '!';
    var h = document.getElementById('title');
    h.textContent = title;
    document.getElementById('text').textContent = text;
    document.title = title;
    h.focus();
  }

  if (!token) { show('error', t.activate_error_title, t.activate_no_token); return; }
  // The token is spent by this page: keep it out of the history and of any later referrer.
  history.replaceState(null, '', window.location.pathname);
  fetch('/v1/auth/signup-activation', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ token: token })
  }).then(function (r) {
    return r.json().then(function (answer) {
      if (r.ok) {
        show('ok', t.activate_ok_title, t.activate_ok_text);
        document.getElementById('account').textContent = answer.account_id;
        document.getElementById('user').textContent = answer.user_id;
        document.getElementById('facts').hidden = false;
        document.body.dataset.activated = answer.user_id;
      } else {
        var code = (answer.error || {}).code;
        show('error', t.activate_error_title, t['error_' + code] || (answer.error || {}).message || t.generic_error);
        document.body.dataset.failed = code || 'error';
      }
    });
  }).catch(function () { show('error', t.activate_error_title, t.network_error); });
})();
