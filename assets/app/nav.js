// frontdesk inbox: moving between conversations by keyboard (j/k or Alt+↓/↑), the
// keyboard-shortcut help (?), and the contact panel opened on a wide screen. A file of its
// own beside app.js; no inline script (the Content-Security-Policy forbids it).
//
// The order is the inbox tab's: the list page remembers its tab (address and conversation
// ids) in this browser tab's sessionStorage; from a conversation, j/k fetch that list
// fresh and open the conversation after (or before) this one. When this one has left the
// tab meanwhile (closed, handed back), the one that took its place is next.
(function () {
  'use strict';
  var body = document.body;
  var page = body.getAttribute('data-page');
  var LIST = 'frontdesk:list';

  // The contact panel is collapsed on a phone (a <details>) and open on a wide screen.
  function openPanel() {
    var panel = document.querySelector('details.contact-panel');
    if (panel && window.matchMedia && window.matchMedia('(min-width: 60rem)').matches) panel.open = true;
  }
  openPanel();
  // (split.js swaps another conversation into the page: its panel too.)
  document.addEventListener('frontdesk:swapped', openPanel);

  if (page !== 'inbox' && page !== 'conversation') return;

  // Where "no next conversation" and the like are said (visibly, and to screen readers).
  // (A live update may replace the whole of <main>: it is put back when needed.)
  var status = document.createElement('p');
  status.className = 'notice nav-status';
  status.setAttribute('role', 'status');
  status.hidden = true;
  function place() {
    var main = document.querySelector('main');
    if (main && !main.contains(status)) main.insertBefore(status, main.firstChild);
  }
  place();
  function say(text) {
    place();
    status.textContent = text;
    status.hidden = !text;
  }

  function storage() {
    try { return window.sessionStorage; } catch (_) { return null; }
  }
  function idsIn(doc) {
    var links = doc.querySelectorAll('ul.conversations a.open');
    var ids = [];
    for (var i = 0; i < links.length; i++) ids.push(links[i].getAttribute('href').split('/').pop());
    return ids;
  }
  function saved() {
    var s = storage();
    if (!s) return null;
    try { return JSON.parse(s.getItem(LIST) || 'null'); } catch (_) { return null; }
  }
  function remember(href, ids) {
    var s = storage();
    if (s) s.setItem(LIST, JSON.stringify({ href: href, ids: ids }));
  }
  if (page === 'inbox') {
    var here = function () { remember(location.pathname + location.search, idsIn(document)); };
    here();
    // The list updates itself live; what it shows when the agent leaves is the order.
    window.addEventListener('pagehide', here);
    document.addEventListener('click', function (e) {
      if (e.target.closest && e.target.closest('ul.conversations a.open')) here();
    });
  }

  // On the list: j/k move the focus from one conversation to the next; Enter opens it.
  function move(step) {
    var links = document.querySelectorAll('ul.conversations a.open');
    if (!links.length) { say('No conversations in this tab.'); return; }
    var at = -1;
    for (var i = 0; i < links.length; i++) { if (links[i] === document.activeElement) at = i; }
    var next = at < 0 ? (step > 0 ? 0 : links.length - 1) : at + step;
    if (next < 0 || next >= links.length) {
      say(step > 0 ? 'That was the last conversation of this tab.' : 'That was the first conversation of this tab.');
      return;
    }
    say('');
    var current = document.querySelectorAll('ul.conversations li.current');
    for (var j = 0; j < current.length; j++) current[j].classList.remove('current');
    var item = links[next].closest('li');
    if (item) item.classList.add('current');
    links[next].focus();
    links[next].scrollIntoView({ block: 'nearest' });
  }

  // On a conversation: open the next (or previous) one of the remembered tab.
  var going = false;
  function go(step) {
    if (going || !window.fetch) return;
    going = true;
    // (The conversation shown now: split.js may have swapped another one in.)
    var conversation = body.getAttribute('data-conversation');
    var list = saved();
    var href = list && typeof list.href === 'string' && list.href.indexOf('/app') === 0 ? list.href : '/app';
    fetch(href, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.text(); })
      .then(function (html) {
        var ids = idsIn(new DOMParser().parseFromString(html, 'text/html'));
        var at = ids.indexOf(conversation);
        var target;
        if (at >= 0) {
          target = ids[at + step];
        } else {
          // This one left the tab: the one now in its old place is next.
          var old = list && list.ids ? list.ids.indexOf(conversation) : -1;
          target = old < 0 ? ids[step > 0 ? 0 : ids.length - 1] : ids[step > 0 ? old : old - 1];
        }
        going = false;
        if (!target) {
          say(step > 0 ? 'No next conversation in this tab.' : 'No previous conversation in this tab.');
          return;
        }
        remember(href, ids);
        location.href = '/app/c/' + target;
      })
      .catch(function () { going = false; say('The list could not be loaded; try again.'); });
  }

  function typing(el) {
    if (!el || el === body) return false;
    var tag = el.tagName;
    return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || el.isContentEditable;
  }

  document.addEventListener('keydown', function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || typing(e.target)) return;
    var step = 0;
    if (!e.altKey && e.key === 'j') step = 1;
    else if (!e.altKey && e.key === 'k') step = -1;
    else if (e.altKey && e.key === 'ArrowDown') step = 1;
    else if (e.altKey && e.key === 'ArrowUp') step = -1;
    else if (e.key === '?' && document.getElementById('shortcuts')) {
      var help = document.getElementById('shortcuts');
      e.preventDefault();
      help.open = !help.open;
      if (help.open) {
        help.scrollIntoView({ block: 'nearest' });
        help.querySelector('summary').focus();
      }
      return;
    } else return;
    e.preventDefault();
    if (page === 'inbox') move(step); else go(step);
  });
})();
