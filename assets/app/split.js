// frontdesk: the inbox list beside the conversation on a wide screen (split.rs), and the
// conversation's actions without full-page loads. A file of its own beside app.js and
// nav.js; no inline script (the Content-Security-Policy forbids it). Progressive: without
// script the column's links and the forms are plain links and posts.
//
//  - A conversation picked in the left column is fetched and put in place of the thread
//    area (the column stays, scrolled where it was); its address is pushed to the
//    history, so back, forward and reload work.
//  - The conversation's action forms post with fetch, and the page the server answers
//    with is rendered in place: the conversation after the redirect (its address then
//    replaces this one, as without script), a held reply (409, "Send anyway") or a
//    refused one (422). An expired session is left to the plain post (the login form,
//    which leads back to the draft app.js keeps); a failure keeps the typed text.
//
// After a swap the `frontdesk:swapped` event lets app.js and nav.js set up again for the
// new content (live updates, presence, the draft, the newest message in view).
(function () {
  'use strict';
  var body = document.body;
  if (body.getAttribute('data-page') !== 'conversation') return;
  if (!window.fetch || !window.DOMParser || !window.history || !history.pushState) return;

  function parse(html) { return new DOMParser().parseFromString(html, 'text/html'); }
  // The address of what the page shows (a change of its #fragment alone loads nothing).
  function here() { return location.pathname + location.search; }
  var shown = here();

  // The column marks the conversation shown.
  function mark(id) {
    var items = document.querySelectorAll('nav.split-list ul.conversations li');
    for (var i = 0; i < items.length; i++) {
      var link = items[i].querySelector('a.open');
      var on = !!link && link.getAttribute('href').split('?')[0] === '/app/c/' + id;
      items[i].classList.toggle('current', on);
      if (link && on) link.setAttribute('aria-current', 'page');
      else if (link) link.removeAttribute('aria-current');
    }
  }

  // Puts the fetched page's conversation in place of this one; false when it has none
  // (the login form, an error page).
  // `rows`: also take the fetched column's rows (after an action, which may have changed
  // this conversation's row: its owner, labels, snooze mark); the column itself stays,
  // scrolled where it was.
  function render(doc, url, how, rows) {
    var fresh = doc.querySelector('div.split-main');
    var old = document.querySelector('div.split-main');
    if (!fresh || !old) return false;
    old.replaceWith(document.adoptNode(fresh));
    var freshRows = rows ? doc.querySelector('nav.split-list ul.conversations') : null;
    var oldRows = document.querySelector('nav.split-list ul.conversations');
    if (freshRows && oldRows) oldRows.replaceWith(document.adoptNode(freshRows));
    var id = doc.body.getAttribute('data-conversation');
    if (id) body.setAttribute('data-conversation', id);
    if (doc.title) document.title = doc.title;
    if (how === 'push') history.pushState({ split: true }, '', url);
    else if (how === 'replace') history.replaceState({ split: true }, '', url);
    shown = here();
    if (id) mark(id);
    document.dispatchEvent(new CustomEvent('frontdesk:swapped'));
    return true;
  }

  // Opens a conversation in place (`how`: 'push' for a click, null for back/forward).
  var loading = null;
  function open(url, how) {
    if (loading) loading.abort();
    var ctl = new AbortController();
    loading = ctl;
    body.setAttribute('aria-busy', 'true');
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'text/html' }, signal: ctl.signal })
      .then(function (r) {
        if (!r.ok) throw new Error(String(r.status));
        return r.text();
      })
      .then(function (html) {
        if (loading !== ctl) return;
        loading = null;
        body.removeAttribute('aria-busy');
        if (!render(parse(html), url, how)) { location.href = url; return; }
        var heading = document.querySelector('div.split-main h1');
        if (heading) {
          heading.setAttribute('tabindex', '-1');
          heading.focus({ preventScroll: true });
        }
      })
      .catch(function (e) {
        if (e && e.name === 'AbortError') return;
        location.href = url;
      });
  }

  document.addEventListener('click', function (e) {
    if (e.defaultPrevented || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    var link = e.target.closest ? e.target.closest('nav.split-list a.open') : null;
    if (!link) return;
    e.preventDefault();
    open(link.href, 'push');
  });
  window.addEventListener('popstate', function () {
    if (here() === shown) return;
    if (/^\/app\/c\/\d+$/.test(location.pathname)) open(location.href, null);
    else location.reload();
  });

  // The forms posted with fetch.
  // Every action of the conversation page: reply, note, retry, take over, hand back,
  // assign, close, priority, labels, snooze, template. Not the attachment (a file, sent
  // as multipart by the plain form) nor the erase (it leaves the conversation).
  var FORMS = 'div.split-main form[method="post"][action^="/app/c/"]:not(.attach):not([action$="/erase"])';
  function fail(form, text) {
    var old = form.parentNode.querySelector('p.split-problem');
    if (old) old.remove();
    var problem = document.createElement('p');
    problem.className = 'problem split-problem';
    problem.setAttribute('role', 'alert');
    problem.textContent = text;
    form.parentNode.insertBefore(problem, form);
  }
  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (e.defaultPrevented || !form.matches || !form.matches(FORMS)) return;
    e.preventDefault();
    if (form.getAttribute('aria-busy') === 'true') return;
    var data = e.submitter ? new FormData(form, e.submitter) : new FormData(form);
    var reply = form.id === 'reply';
    var buttons = form.querySelectorAll('button');
    form.setAttribute('aria-busy', 'true');
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true;
    var done = function () {
      form.removeAttribute('aria-busy');
      for (var j = 0; j < buttons.length; j++) buttons[j].disabled = false;
    };
    fetch(form.action, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { Accept: 'text/html' },
      body: new URLSearchParams(data),
    })
      .then(function (r) { return r.text().then(function (html) { return { r: r, doc: parse(html) }; }); })
      .then(function (x) {
        var r = x.r;
        var doc = x.doc;
        if (doc.querySelector('div.split-main')) {
          // After the redirect the address is the conversation's with its notice, as
          // without script.
          var url = null;
          if (r.redirected) {
            var to = new URL(r.url);
            url = to.pathname + to.search;
          }
          render(doc, url, url ? 'replace' : null, true);
          var composer = document.getElementById('composer');
          if (reply && composer) composer.focus({ preventScroll: true });
          return;
        }
        done();
        if (doc.querySelector('form[action="/login"]')) { form.submit(); return; }
        // Done, and the answer is another page (an action that leaves the conversation):
        // go there, as the plain post would have.
        if (r.ok && r.redirected) { location.assign(r.url); return; }
        var said = doc.querySelector('main section p');
        fail(form, (said ? said.textContent + ' ' : '') + '(HTTP ' + r.status + ') What you typed is still here.');
      })
      .catch(function () {
        done();
        fail(form, 'The server could not be reached. What you typed is still here; try again.');
      });
  });
})();
