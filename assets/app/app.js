// frontdesk inbox: live updates over Server-Sent Events (notify.js turns handoffs into
// browser notifications).
// No framework and no inline script (the Content-Security-Policy forbids it). Fresh
// HTML comes from the server, which escapes every customer-written value.
(function () {
  'use strict';
  // Everything below runs again, for the new conversation, when split.js swaps one into
  // the page (the `frontdesk:swapped` event); what the last run set up is undone first.
  var running = null;
  // Presence, across runs: which conversations this page has announced itself on, and
  // when this browser tab last told the server about each (kept in sessionStorage too, so
  // the spacing the server asks for holds across page loads, e.g. after a login).
  var announced = {};
  var beats = {
    get: function (id) {
      var at = 0;
      try { at = Number(window.sessionStorage.getItem('frontdesk:beat:' + id)) || 0; } catch (_) {}
      return Math.max(at, beats[id] || 0);
    },
    set: function (id) {
      beats[id] = Date.now();
      try { window.sessionStorage.setItem('frontdesk:beat:' + id, String(beats[id])); } catch (_) {}
    },
  };
  function restart() {
    if (running) running.abort();
    running = new AbortController();
    start(running.signal);
  }
  document.addEventListener('frontdesk:swapped', restart);
  restart();

  function start(signal) {
  var body = document.body;
  var page = body.getAttribute('data-page');
  var conversation = body.getAttribute('data-conversation');

  // The server writes times in UTC (labelled so); here they become the viewer's own:
  // each message's clock time, and the day separators drawn again by local days.
  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function dayKey(d) { return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()); }
  function localTimes() {
    var thread = document.querySelector('ol.thread');
    if (!thread || !window.Intl) return;
    var clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
    var full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });
    var words = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
    var now = new Date();
    var yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
    var today = dayKey(now);
    var before = dayKey(yesterday);
    var old = thread.querySelectorAll('li.day');
    for (var i = 0; i < old.length; i++) old[i].remove();
    var items = thread.querySelectorAll('li[data-at]');
    var last = null;
    for (var j = 0; j < items.length; j++) {
      var at = new Date(Number(items[j].getAttribute('data-at')));
      var time = items[j].querySelector('time.at');
      if (time) { time.textContent = clock.format(at); time.title = full.format(at); }
      var key = dayKey(at);
      if (key === last) continue;
      last = key;
      var separator = document.createElement('li');
      separator.className = 'day';
      var label = document.createElement('time');
      label.setAttribute('datetime', key);
      label.textContent = key === today ? 'Today' : key === before ? 'Yesterday' : words.format(at);
      separator.appendChild(label);
      thread.insertBefore(separator, items[j]);
    }
    var zone = document.querySelector('p.tz');
    var name = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) zone.textContent = name ? 'Times in your time zone (' + name + ').' : 'Times in your time zone.';
  }
  localTimes();

  // Snooze (teamwork.rs): wake times in the viewer's zone, and the snooze form told the
  // browser's UTC offset (minutes east), by which the server reads "tomorrow 9:00" and a
  // picked date and time.
  function snoozeTimes() {
    if (!window.Intl) return;
    var format = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
    var times = document.querySelectorAll('time.local[datetime]');
    for (var i = 0; i < times.length; i++) {
      var at = new Date(times[i].getAttribute('datetime'));
      if (!isNaN(at.getTime())) times[i].textContent = format.format(at);
    }
    var offsets = document.querySelectorAll('form.snooze input[name="tz"]');
    for (var j = 0; j < offsets.length; j++) offsets[j].value = String(-new Date().getTimezoneOffset());
    var rule = document.querySelector('form.snooze .tz-rule');
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (rule && zone) rule.textContent = 'Times are in your time zone (' + zone + '). It wakes at that time or when the customer writes.';
  }
  snoozeTimes();

  // The conversation opens at its newest message, just above the composer (which stays
  // at the bottom of the screen); an older page ("?before=") opens at its top.
  var log = document.querySelector('div.log');
  var composerCard = document.querySelector('section.composer');
  function toNewest() {
    if (!log) return;
    var bottom = log.getBoundingClientRect().bottom + window.scrollY;
    var room = window.innerHeight - (composerCard ? composerCard.offsetHeight : 0);
    window.scrollTo(0, Math.max(0, bottom - room + 8));
  }
  function atNewest() {
    if (!log) return false;
    var room = window.innerHeight - (composerCard ? composerCard.offsetHeight : 0);
    return log.getBoundingClientRect().bottom <= room + 80;
  }
  // (After an action shown at the top — assigned, taken over, handed back, closed — the
  // page stays at the top, where its notice is.)
  var query = new URLSearchParams(location.search);
  var topNotice = ['assigned', 'taken', 'handed_back', 'closed', 'snoozed', 'woken'].indexOf(query.get('notice')) >= 0;
  if (log && !location.hash && !query.get('before') && !topNotice) toNewest();

  // Every thread entry carries a unique data-key; pages merge by it.
  function keysOf(list) {
    var keys = {};
    var items = list.querySelectorAll('li[data-key]');
    for (var i = 0; i < items.length; i++) keys[items[i].getAttribute('data-key')] = true;
    return keys;
  }

  // "Earlier messages" loads the page before in place (it is a plain link without script):
  // its entries go on top of the thread, and the screen stays on what was being read.
  document.addEventListener('click', function (e) {
    var link = e.target.closest ? e.target.closest('a.earlier') : null;
    if (!link || !window.fetch) return;
    e.preventDefault();
    fetch(link.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var thread = document.querySelector('ol.thread');
        var older = doc.querySelector('ol.thread');
        if (!thread || !older) { location.href = link.href; return; }
        var have = keysOf(thread);
        var first = thread.querySelector('li[data-key]');
        var height = document.documentElement.scrollHeight;
        var items = older.querySelectorAll('li[data-key]');
        for (var i = 0; i < items.length; i++) {
          if (!have[items[i].getAttribute('data-key')]) thread.insertBefore(document.importNode(items[i], true), first);
        }
        localTimes();
        window.scrollBy(0, document.documentElement.scrollHeight - height);
        var next = doc.querySelector('a.earlier');
        var holder = link.parentNode;
        if (next) {
          link.href = next.getAttribute('href');
          link.focus();
        } else {
          holder.remove();
          if (log) log.focus();
        }
      })
      .catch(function () { location.href = link.href; });
  }, { signal: signal });

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
  // The fresh page's thread, with the entries older than its first that this page
  // already shows (earlier pages loaded here, or entries pushed off the newest page by
  // new ones) kept on top.
  function mergeThread(doc) {
    var fresh = doc.querySelector('ol.thread');
    var old = document.querySelector('ol.thread');
    if (!fresh || !old || inUse(old)) return;
    var pinned = atNewest();
    var freshKeys = keysOf(fresh);
    var firstFresh = fresh.querySelector('li[data-at]');
    var from = firstFresh ? Number(firstFresh.getAttribute('data-at')) : Infinity;
    var kept = old.querySelectorAll('li[data-key]');
    for (var i = 0; i < kept.length; i++) {
      var key = kept[i].getAttribute('data-key');
      if (!freshKeys[key] && Number(kept[i].getAttribute('data-at')) <= from) fresh.insertBefore(kept[i], firstFresh);
    }
    old.replaceWith(fresh);
    localTimes();
    if (pinned) toNewest();
  }
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    // A page a form's answer left at its action's address (a refused or held reply at
    // /app/c/ID/reply) is refreshed from the conversation's own address.
    var own = '/app/c/' + conversation;
    var from = page === 'conversation' && conversation && location.pathname !== own ? own : location.href;
    fetch(from, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html || signal.aborted) return;
        var doc = new DOMParser().parseFromString(html, 'text/html');
        if (page === 'conversation') {
          // The wide screen's left column (split.rs): the inbox tab's list.
          swap(doc, 'nav.split-list .split-rows');
          // Keep the composer (and whatever the agent is typing) as it is.
          mergeThread(doc);
          swap(doc, 'section.packet');
          swap(doc, 'p.status');
          swap(doc, 'div.actions');
        } else {
          swap(doc, 'ul.conversations');
          swap(doc, 'p.empty');
          swap(doc, 'nav.tabs');
          if (!document.querySelector('ul.conversations') && doc.querySelector('ul.conversations')) swap(doc, 'main');
        }
        snoozeTimes();
        body.setAttribute('data-updated', String(Date.now()));
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  // A conversation page also hears who else is on it (presence events).
  var events = new EventSource(page === 'conversation' && conversation ? '/app/events?conversation=' + conversation : '/app/events');
  signal.addEventListener('abort', function () { events.close(); });
  // With the list beside the thread (a wide screen), any conversation's change counts.
  function listShown() {
    var column = document.querySelector('nav.split-list');
    return !!(column && column.offsetParent !== null);
  }
  // The stream starts at the store's state when it connects; anything that changed
  // between this page's render and that moment is fetched once, on the first open.
  var opened = false;
  events.addEventListener('open', function () {
    if (!opened) { opened = true; refresh(); }
  });
  function onEvent(e) {
    var data = {};
    try { data = JSON.parse(e.data || '{}'); } catch (_) { return; }
    // Passed on to the page's other scripts (notify.js: notifications for handoffs).
    document.dispatchEvent(new CustomEvent('frontdesk:event', { detail: { type: e.type, conversation_id: data.conversation_id } }));
    if (page === 'conversation' && String(data.conversation_id) !== conversation && !listShown()) return;
    refresh();
  }
  ['message', 'handoff', 'status', 'note', 'sync', 'snooze'].forEach(function (k) { events.addEventListener(k, onEvent); });

  // A canned reply fills the composer, to send as it is or edit first.
  var canned = document.getElementById('canned');
  var composer = document.getElementById('composer');
  if (canned && composer) {
    canned.addEventListener('change', function () {
      var option = canned.options[canned.selectedIndex];
      if (option && option.getAttribute('data-text')) { composer.value = option.getAttribute('data-text'); composer.focus(); }
    });
  }

  // Keyboard: Ctrl+Enter (or ⌘+Enter) sends the reply; "/" in an empty composer opens the
  // canned replies as a list to pick with the arrow keys and Enter (Escape closes it).
  if (composer && composer.form) {
    var picker = null;
    var closePicker = function (refocus) {
      if (!picker) return;
      var list = picker;
      picker = null;
      if (refocus) composer.focus();
      list.remove();
    };
    var choose = function (option) {
      composer.value = option.getAttribute('data-text');
      composer.dispatchEvent(new Event('input'));
      closePicker(true);
      composer.setSelectionRange(composer.value.length, composer.value.length);
    };
    var openPicker = function () {
      var options = canned ? canned.querySelectorAll('option[data-text]') : [];
      if (!options.length) return false;
      picker = document.createElement('ul');
      picker.className = 'canned-picker';
      picker.setAttribute('role', 'listbox');
      picker.setAttribute('aria-label', 'Canned replies (arrow keys, Enter to pick, Escape to close)');
      picker.tabIndex = -1;
      for (var i = 0; i < options.length; i++) {
        var item = document.createElement('li');
        item.id = 'canned-option-' + i;
        item.setAttribute('role', 'option');
        item.setAttribute('aria-selected', i === 0 ? 'true' : 'false');
        item.setAttribute('data-text', options[i].getAttribute('data-text'));
        var title = document.createElement('strong');
        title.textContent = options[i].textContent;
        var text = document.createElement('span');
        text.textContent = options[i].getAttribute('data-text');
        item.appendChild(title);
        item.appendChild(text);
        item.addEventListener('mousedown', function (e) { e.preventDefault(); choose(e.currentTarget); });
        picker.appendChild(item);
      }
      picker.setAttribute('aria-activedescendant', 'canned-option-0');
      picker.addEventListener('keydown', function (e) {
        var items = picker.querySelectorAll('[role="option"]');
        var at = 0;
        for (var j = 0; j < items.length; j++) { if (items[j].getAttribute('aria-selected') === 'true') at = j; }
        var next = at;
        if (e.key === 'ArrowDown') next = Math.min(at + 1, items.length - 1);
        else if (e.key === 'ArrowUp') next = Math.max(at - 1, 0);
        else if (e.key === 'Home') next = 0;
        else if (e.key === 'End') next = items.length - 1;
        else if (e.key === 'Enter') { e.preventDefault(); choose(items[at]); return; }
        else if (e.key === 'Escape' || e.key === 'Tab') { e.preventDefault(); closePicker(true); return; }
        else return;
        e.preventDefault();
        items[at].setAttribute('aria-selected', 'false');
        items[next].setAttribute('aria-selected', 'true');
        picker.setAttribute('aria-activedescendant', items[next].id);
        items[next].scrollIntoView({ block: 'nearest' });
      });
      picker.addEventListener('focusout', function (e) {
        if (picker && !picker.contains(e.relatedTarget)) closePicker(false);
      });
      var after = composer.closest('label') || composer;
      after.parentNode.insertBefore(picker, after.nextSibling);
      picker.focus();
      return true;
    };
    composer.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        if (composer.value.trim()) composer.form.requestSubmit();
      } else if (e.key === '/' && !composer.value && !e.ctrlKey && !e.metaKey && !e.altKey) {
        if (openPicker()) e.preventDefault();
      }
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

  // Collision warning (teamwork.rs): this page tells the server it is open — every third
  // of the presence time to live while visible, and "typing" when the composer changes
  // (at most every 2 s) — and shows who else is on the conversation, as the server pushes
  // it. A reply sent while a teammate types, or after a teammate's reply landed, comes
  // back held with "Send anyway" (the server's check).
  var presence = document.querySelector('p.presence');
  var csrfField = document.querySelector('input[name="csrf"]');
  if (presence && conversation && csrfField) {
    var presenceUrl = '/app/c/' + conversation + '/presence';
    var csrf = csrfField.value;
    var showPresence = function (others) {
      var words = others.map(function (o) { return o.typing ? o.name + ' is typing…' : o.name + ' is also viewing'; }).join('; ');
      presence.textContent = words;
      presence.hidden = !words;
    };
    // Beats go at least 1.5 s apart (the server takes one a second per page): one due
    // sooner waits, and "typing" wins over "viewing" while it waits.
    var lastBeat = beats.get(conversation);
    var dueState = null;
    var dueTimer = null;
    var send = function (state) {
      beats.set(conversation);
      announced[conversation] = lastBeat = Date.now();
      fetch(presenceUrl, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': csrf },
        body: 'state=' + state,
      })
        .then(function (r) { return r.json(); })
        .then(function (d) { if (d && d.others) showPresence(d.others); })
        .catch(function () {});
    };
    var beat = function (state) {
      if (dueState !== 'typing') dueState = state;
      if (dueTimer) return;
      dueTimer = setTimeout(function () {
        dueTimer = null;
        var state = dueState;
        dueState = null;
        send(state);
      }, Math.max(0, lastBeat + 1500 - Date.now()));
    };
    var every = Math.max(1500, (Number(presence.getAttribute('data-ttl')) || 30000) / 3);
    // (Not again when this page told the server within a heartbeat: a form's answer
    // swapped in by split.js is the same visit.)
    if (!(announced[conversation] && Date.now() - announced[conversation] < every)) beat('viewing');
    var beating = setInterval(function () { if (!document.hidden) beat('viewing'); }, every);
    document.addEventListener('visibilitychange', function () { if (!document.hidden) beat('viewing'); }, { signal: signal });
    var typedAt = 0;
    if (composer) {
      composer.addEventListener('input', function () {
        var now = Date.now();
        if (now - typedAt >= 2000) { typedAt = now; beat('typing'); }
      });
    }
    var gone = function () {
      delete announced[conversation];
      beats.set(conversation);
      if (navigator.sendBeacon) navigator.sendBeacon(presenceUrl, new URLSearchParams({ state: 'gone', csrf: csrf }));
    };
    window.addEventListener('pagehide', gone, { signal: signal });
    // Another conversation swapped in (split.js): this one is left (the same one again,
    // after a form's answer, is not).
    signal.addEventListener('abort', function () {
      clearInterval(beating);
      if (dueTimer) clearTimeout(dueTimer);
      if (body.getAttribute('data-conversation') !== conversation) gone();
    });
    events.addEventListener('presence', function (e) {
      var d = {};
      try { d = JSON.parse(e.data || '{}'); } catch (_) { return; }
      if (String(d.conversation_id) === conversation && d.others) showPresence(d.others);
    });
  }
  }
})();
