// frontdesk: browser notifications for new handoffs, with an optional short sound, on the
// inbox list and the conversation pages. app.js owns the page's one event stream and
// passes each event on as a `frontdesk:event` DOM event; this file decides what to tell.
// "Notify me" (shown while the browser has not been asked) asks for permission; the
// "Sound" switch is kept in this browser (localStorage) and the sound is made with
// WebAudio, so there is no sound file. No inline script (the CSP forbids it).
(function () {
  'use strict';
  var body = document.body;
  var page = body.getAttribute('data-page');
  if (!page) return;
  var SOUND_KEY = 'frontdesk:notify-sound';
  var store = null;
  try { store = window.localStorage; } catch (_) { store = null; }
  function soundOn() { return !!store && store.getItem(SOUND_KEY) === 'on'; }

  // A short two-tone chime (about 0.3 s). Browsers let a page play sound once someone
  // has clicked or typed on it; before that the chime is skipped, the notification stays.
  var audio = null;
  function chime() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try {
      audio = audio || new Context();
      if (audio.state === 'suspended' && audio.resume) audio.resume();
      var t = audio.currentTime;
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      tone.type = 'sine';
      tone.frequency.setValueAtTime(880, t);
      tone.frequency.setValueAtTime(660, t + 0.12);
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.3);
      tone.connect(gain);
      gain.connect(audio.destination);
      tone.start(t);
      tone.stop(t + 0.32);
    } catch (_) { /* no sound device: the notification is enough */ }
  }

  var ask = document.getElementById('notify');
  if (ask && window.Notification && Notification.permission === 'default') {
    ask.hidden = false;
    ask.addEventListener('click', function () {
      Notification.requestPermission().then(function () { ask.hidden = true; });
    });
  }

  // The sound switch, next to "Notify me".
  if (ask && store) {
    var sound = document.createElement('button');
    sound.type = 'button';
    sound.id = 'notify-sound';
    sound.textContent = 'Sound';
    sound.title = 'Play a sound when a conversation is handed to the team';
    sound.setAttribute('aria-pressed', soundOn() ? 'true' : 'false');
    sound.addEventListener('click', function () {
      var on = !soundOn();
      if (on) store.setItem(SOUND_KEY, 'on'); else store.removeItem(SOUND_KEY);
      sound.setAttribute('aria-pressed', on ? 'true' : 'false');
      if (on) chime(); // a sample, and the click lets the page play sound later
    });
    ask.parentNode.insertBefore(sound, ask.nextSibling);
  }

  document.addEventListener('frontdesk:event', function (e) {
    var d = e.detail || {};
    if (d.type !== 'handoff' || d.conversation_id === undefined) return;
    // Someone looking at this very conversation sees the handoff on the page (read now:
    // split.js swaps conversations in without a page load).
    var conversation = body.getAttribute('data-conversation');
    if (page === 'conversation' && String(d.conversation_id) === conversation && !document.hidden) return;
    if (window.Notification && Notification.permission === 'granted') {
      try {
        var note = new Notification('A customer needs a person', {
          body: 'A conversation was handed over to the team. Open it in frontdesk.',
          tag: 'frontdesk-handoff-' + d.conversation_id,
        });
        note.onclick = function () {
          window.focus();
          location.href = '/app/c/' + encodeURIComponent(String(d.conversation_id));
          note.close();
        };
      } catch (_) { /* some mobile browsers only notify from a service worker */ }
    }
    if (soundOn()) chime();
  });
})();
