// frontdesk: a search result opens its conversation at the matching message
// (`/app/c/{id}?m={message}#m{message}`; the server renders the page of the thread that
// holds it). Here that message is brought to the middle of the screen and outlined for
// a few seconds — also when a live update replaces the thread under it. Without script,
// the browser's own jump to the anchor and the `:target` outline do the same.
(function () {
  'use strict';
  var hash = location.hash;
  if (!/^#m\d+$/.test(hash)) return;
  var key = hash.slice(1);
  var until = Date.now() + 3000;
  function mark() {
    var item = document.getElementById(key);
    if (!item || item.classList.contains('found')) return item;
    item.classList.add('found');
    return item;
  }
  var item = mark();
  if (!item) return;
  item.scrollIntoView({ block: 'center' });
  var thread = document.querySelector('div.log') || document.body;
  if (!window.MutationObserver) return;
  var watch = new MutationObserver(function () {
    if (Date.now() > until) { watch.disconnect(); return; }
    mark();
  });
  watch.observe(thread, { childList: true, subtree: true });
  setTimeout(function () {
    watch.disconnect();
    var last = document.getElementById(key);
    if (last) last.classList.remove('found');
  }, 3200);
})();
