// frontdesk inbox: live updates over Server-Sent Events, optional browser notifications.
// No framework and no inline script (the Content-Security-Policy forbids it). Fresh
// HTML comes from the server, which escapes every customer-written value.
(function () {
  'use strict';
  var body = document.body;
  var page = body.getAttribute('data-page');
  var conversation = body.getAttribute('data-conversation');
  if (!page || !window.EventSource || !window.fetch) return;

  var busy = false;
  var again = false;
  // Whether someone is using a part of the page: focus inside it, or typed text in it.
  function inUse(el) {
    if (el.contains(document.activeElement) && document.activeElement !== document.body) return true;
    var fields = el.querySelectorAll('input[type="text"], input:not([type]), textarea');
    for (var i = 0; i < fields.length; i++) { if (fields[i].value !== fields[i].defaultValue) return true; }
    return false;
  }
  function swap(doc, selector) {
    var fresh = doc.querySelector(selector);
    var old = document.querySelector(selector);
    if (fresh && old && !inUse(old)) old.replaceWith(fresh);
  }
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, 'text/html');
        if (page === 'conversation') {
          // Keep the composer (and whatever the agent is typing) as it is.
          swap(doc, 'ol.thread');
          swap(doc, 'section.packet');
          swap(doc, 'p.status');
          swap(doc, 'div.actions');
        } else {
          swap(doc, 'ul.conversations');
          swap(doc, 'p.empty');
          if (!document.querySelector('ul.conversations') && doc.querySelector('ul.conversations')) swap(doc, 'main');
        }
        body.setAttribute('data-updated', String(Date.now()));
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  var events = new EventSource('/app/events');
  // The stream starts at the store's state when it connects; anything that changed
  // between this page's render and that moment is fetched once, on the first open.
  var opened = false;
  events.addEventListener('open', function () {
    if (!opened) { opened = true; refresh(); }
  });
  function onEvent(e) {
    var data = {};
    try { data = JSON.parse(e.data || '{}'); } catch (_) { return; }
    if (page === 'conversation' && String(data.conversation_id) !== conversation) return;
    refresh();
    if (e.type === 'handoff' && document.hidden && window.Notification && Notification.permission === 'granted') {
      new Notification('frontdesk', { body: 'A conversation needs a person.' });
    }
  }
  ['message', 'handoff', 'status', 'note', 'sync'].forEach(function (k) { events.addEventListener(k, onEvent); });

  // A canned reply fills the composer, to send as it is or edit first.
  var canned = document.getElementById('canned');
  var composer = document.getElementById('composer');
  if (canned && composer) {
    canned.addEventListener('change', function () {
      var option = canned.options[canned.selectedIndex];
      if (option && option.getAttribute('data-text')) { composer.value = option.getAttribute('data-text'); composer.focus(); }
    });
  }

  // The reply being typed is kept in this browser, per conversation, until it is sent:
  // an expired session (the server answers with the login form, which leads back here)
  // or a closed tab does not lose it.
  if (composer && conversation && window.localStorage) {
    var draftKey = 'frontdesk:draft:' + conversation;
    var pendingKey = 'frontdesk:pending:' + conversation;
    var store = window.localStorage;
    var draft = store.getItem(draftKey);
    if (new URLSearchParams(location.search).get('notice') === 'sent' && draft !== null && draft === store.getItem(pendingKey)) {
      store.removeItem(draftKey);
    } else if (draft && !composer.value && composer.form) {
      composer.value = draft;
      var restored = document.createElement('p');
      restored.className = 'notice draft-restored';
      restored.setAttribute('role', 'status');
      restored.textContent = 'Your unsent reply was restored.';
      composer.form.parentNode.insertBefore(restored, composer.form);
    }
    store.removeItem(pendingKey);
    composer.addEventListener('input', function () {
      if (composer.value) store.setItem(draftKey, composer.value); else store.removeItem(draftKey);
    });
    if (composer.form) {
      composer.form.addEventListener('submit', function () {
        if (composer.value) { store.setItem(draftKey, composer.value); store.setItem(pendingKey, composer.value); }
      });
    }
  }

  var button = document.getElementById('notify');
  if (button && window.Notification && Notification.permission === 'default') {
    button.hidden = false;
    button.addEventListener('click', function () {
      Notification.requestPermission().then(function () { button.hidden = true; });
    });
  }
})();
