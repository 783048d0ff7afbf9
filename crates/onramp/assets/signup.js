// onramp's hosted signup page (seed 004): the domain dropdown is built from the app schema exactly
// as the seed's snippet builds it, the form is posted as JSON to /v1/auth/signup, and each error
// is shown next to its field.
(function () {
  'use strict';
  var t = JSON.parse(document.getElementById('strings').textContent);
  var form = document.getElementById('signup');
  var select = document.getElementById('domain_id');
  var about = document.getElementById('domain-about');
  var notice = document.getElementById('notice');
  var button = form.querySelector('button[type=submit]');
  var domains = {};

  function say(text) { notice.textContent = text || ''; if (text) notice.focus(); }

  fetch('/v1/apps/' + encodeURIComponent(form.dataset.app) + '/schema', { headers: { Accept: 'application/json' } })
    .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
    .then(function (schema) {
      domains = schema.domains;
      // extracting app schema values for creating a signup domain dropdown
      let options = []
      Object.keys(domains).map((id) => {
          if (domains[id].allow_signup) {
              options.push({
                  value: id,
                  label: domains[id].title
              })
          }
      })
      select.textContent = '';
      options.forEach(function (o) {
        var option = document.createElement('option');
        option.value = o.value;
        option.textContent = o.label;
        select.appendChild(option);
      });
      select.disabled = options.length === 0;
      button.disabled = options.length === 0;
      describe();
    })
    .catch(function () { say(t.schema_failed); });

  // select.onChange: the domain's description and help.
  function describe() {
    var d = domains[select.value];
    about.textContent = d ? [d.description, d.help].filter(Boolean).join(' — ') : '';
  }
  select.addEventListener('change', describe);

  function clearErrors() {
    say('');
    form.querySelectorAll('[aria-invalid]').forEach(function (el) { el.removeAttribute('aria-invalid'); });
    form.querySelectorAll('.error-text').forEach(function (el) { el.textContent = ''; });
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    clearErrors();
    var body = {};
    new FormData(form).forEach(function (value, key) { if (value !== '') body[key] = value; });
    // A CAPTCHA widget fills in its provider's own field: send it as captcha_token.
    ['cf-turnstile-response', 'h-captcha-response', 'g-recaptcha-response'].forEach(function (field) {
      if (body[field]) { body.captcha_token = body[field]; }
      delete body[field];
    });
    button.disabled = true;
    fetch('/v1/auth/signup', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body)
    }).then(function (r) {
      if (r.ok) {
        form.hidden = true;
        var done = document.getElementById('done');
        document.getElementById('done-text').textContent = t.signup_done_text.replace('{email}', body.email || '');
        done.hidden = false;
        done.querySelector('h1').focus();
        return;
      }
      // A CAPTCHA token is good once: the widget gives a fresh one.
      [window.turnstile, window.hcaptcha, window.grecaptcha].forEach(function (widget) {
        if (widget && widget.reset) { widget.reset(); }
      });
      return r.json().then(function (answer) {
        var error = (answer && answer.error) || {};
        var first = null;
        (error.fields || []).forEach(function (f) {
          var input = document.getElementById(f.field);
          var text = document.getElementById(f.field + '-error');
          if (!input || !text) { say(f.message); return; }
          input.setAttribute('aria-invalid', 'true');
          text.textContent = t['field_' + f.code] || f.message;
          first = first || input;
        });
        if (first) { first.focus(); } else if (!(error.fields || []).length) { say(t['error_' + error.code] || error.message || t.generic_error); }
      });
    }).catch(function () { say(t.network_error); })
      .finally(function () { button.disabled = false; });
  });
})();
