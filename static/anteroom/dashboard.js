// @ts-check
// The moderator dashboard made live. The page works without this script (every button is a
// form POST); once the socket is in, the buttons go over it and the lists follow events.
import { avatar } from './avatar.js';
import { join } from './client.js';
import { gettext, interpolate, LANG, ngettext, pgettext } from './i18n.js';
import './media-call.js'; // templates/lobby/_call.html
import { $, cfg, clone, clockOffset, el, fill, html, mmss } from './ui.js';

const baseTitle =
  /** @type {HTMLMetaElement | null} */ (document.querySelector('meta[name="anteroom:title"]'))?.content ||
  interpolate(gettext('%(name)s · Anteroom dashboard'), { name: cfg.room });
const csrf =
  /** @type {HTMLInputElement | null} */ (document.querySelector('input[name="csrfmiddlewaretoken"]'))?.value || '';

let room = null;
let live = false;

// Connection ------------------------------------------------------------------------------------

function status(text, kind) {
  const el = $('live-status');
  el.textContent = text;
  el.classList.toggle('live', kind === 'live');
  el.classList.toggle('down', kind === 'down');
  html.dataset.live = kind === 'live' ? 'on' : 'off';
}

async function connect() {
  status(gettext('Connecting…'), '');
  try {
    room = await join({
      room: cfg.room,
      token: cfg.token || undefined,
      staff: cfg.staff && !cfg.token,
      clockOffset,
    });
  } catch (err) {
    status(interpolate(gettext('Not connected (%(why)s) — the buttons still work'), { why: errorWords(err) }), 'down');
    return;
  }
  live = true;
  status(gettext('Connected'), 'live');
  window.dispatchEvent(new CustomEvent('anteroom:joined', { detail: { room } })); // the call
  room
    .on('entry-requested', (r) => {
      addRow(r, true);
      knocked(r);
    })
    .on('entry-updated', (r) => addRow(r, false))
    .on('entry-removed', (d) => removeRow(d.requestId || d.request?.id))
    .on('activity', renderActivity)
    .on('lobby-message', (f) => showLobbyMessage(f.text))
    .on('participant-joined', renderPeople)
    .on('participant-updated', renderPeople)
    .on('participant-left', renderPeople)
    .on('room-updated', renderControls)
    .on('breakout-help-requested', addHelp)
    .on('breakout-help-resolved', resolveHelp)
    .on('breakouts-updated', renderBreakouts)
    .on('reconnecting', () => {
      live = false;
      status(gettext('Connection lost — reconnecting…'), 'down');
    })
    .on('reconnected', () => {
      live = true;
      status(gettext('Connected'), 'live');
      renderAll();
    })
    .on('closed', (d) => {
      live = false;
      const why = d.error ? errorWords(d.error) : d.code;
      status(interpolate(gettext('Disconnected (%(why)s) — reload to reconnect'), { why }), 'down');
    });
  renderAll();
}

// What went wrong, in the page's language. The server's error frames are already in it (the
// socket's language); these codes are client.js's own, whose messages stay English (it is an SDK).
function errorWords(err) {
  const own = {
    NETWORK_ERROR: gettext('Could not reach the server.'),
    DISCONNECTED: gettext('Not connected to the server; try again.'),
    TIMEOUT: gettext('The server did not answer in time.'),
    REPLACED: gettext('You joined from another connection.'),
  };
  return own[err.code] || err.message || err.code;
}

function renderAll() {
  $('waiting-list').replaceChildren();
  for (const r of room.entryRequests) addRow(r, false);
  updateCount();
  renderPeople();
  renderControls();
  renderBreakouts();
  renderActivity();
}

// Waiting list ----------------------------------------------------------------------------------

function rowFor(id) {
  return document.querySelector(`#waiting-list li[data-request-id="${CSS.escape(id)}"]`);
}

function addRow(r, isNew) {
  // The row's markup is templates/lobby/_waiting_row.html (<template id="waiting-row-template">).
  const name = r.name || gettext('Guest');
  const meta = Object.entries(r.metadata || {});
  const row = clone('waiting-row-template');
  if (isNew) row.classList.add('new');
  Object.assign(row.dataset, {
    requestId: r.id,
    requestedAt: r.data.requested_at,
    expiresAt: r.data.expires_at,
  });
  row.querySelector('[data-slot="avatar"]').replaceWith(avatar(name));
  row.querySelector('.name').textContent = name;
  fill(row, {
    name,
    early: isEarly(r),
    reconnecting: !r.connected,
  });
  const dl = /** @type {HTMLElement} */ (row.querySelector('dl.meta'));
  if (!meta.length) dl.remove();
  dl.hidden = false;
  dl.replaceChildren(
    ...meta.map(([k, v]) =>
      el('div', {}, el('dt', { text: k }), el('dd', { text: typeof v === 'string' ? v : JSON.stringify(v) })),
    ),
  );
  /** @type {HTMLInputElement} */ (row.querySelector('input[name="request_id"]')).value = r.id;
  for (const part of ['reason', 'msg']) {
    row.querySelector(`[data-id="${part}"]`).id = `${part}-${r.id}`;
    /** @type {HTMLLabelElement} */ (row.querySelector(`label[data-for="${part}"]`)).htmlFor = `${part}-${r.id}`;
  }
  const old = rowFor(r.id);
  if (old) old.replaceWith(row);
  else $('waiting-list').append(row);
  tickRow(row, Date.now() - clockOffset);
  updateCount();
}

function removeRow(id) {
  const row = id && rowFor(id);
  if (row) {
    const hadFocus = row.contains(document.activeElement);
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    if (hadFocus) (next?.querySelector('button') || $('waiting-title')).focus();
  }
  updateCount();
}

function updateCount() {
  const n = $('waiting-list').children.length;
  $('waiting-count').textContent = String(n);
  $('waiting-empty').hidden = n > 0;
  $('deny-all-count').textContent = guests(n);
  if (!n) $('deny-all-confirm').hidden = true;
  document.title = n > 0 ? interpolate(ngettext('(%(count)s) waiting · ', '(%(count)s) waiting · ', n), { count: n }) + baseTitle : baseTitle;
  html.dataset.waiting = String(n);
}

// As lobby/views.py's _waited words it (the same msgids).
function fmtWaited(s) {
  if (s < 60) return interpolate(gettext('%(seconds)ss'), { seconds: s });
  if (s < 3600) {
    return interpolate(gettext('%(minutes)sm %(seconds)ss'), { minutes: Math.floor(s / 60), seconds: String(s % 60).padStart(2, '0') });
  }
  return interpolate(gettext('%(hours)sh %(minutes)sm'), {
    hours: Math.floor(s / 3600),
    minutes: String(Math.floor((s % 3600) / 60)).padStart(2, '0'),
  });
}

function tickRow(row, serverNow) {
  const waited = Math.max(0, Math.floor((serverNow - Date.parse(row.dataset.requestedAt)) / 1000));
  const left = Math.max(0, Math.ceil((Date.parse(row.dataset.expiresAt) - serverNow) / 1000));
  row.querySelector('.waited').textContent = fmtWaited(waited);
  row.querySelector('.left').textContent = mmss(left);
}

setInterval(() => {
  const now = Date.now() - clockOffset;
  for (const row of $('waiting-list').children) tickRow(row, now);
  for (const left of document.querySelectorAll('#breakout-list .left')) tickTimer(left, now);
}, 1000);

// Activity: every outcome (the server's audit trail), worded as the page words it. ---------------

const ACTIVITY_SHOWN = 12;
// As lobby/views.py's activity_words words it (the same msgids, so both read the same).
function activityWords(a) {
  const by = byLabel(a.by);
  switch (a.kind) {
    case 'admitted':
      return interpolate(gettext('admitted by %(by)s'), { by });
    case 'denied':
      return a.reason
        ? interpolate(gettext('denied by %(by)s (“%(reason)s”)'), { by, reason: a.reason })
        : interpolate(gettext('denied by %(by)s'), { by });
    case 'timed-out':
      return gettext('timed out (nobody answered)');
    case 'canceled':
      return gettext('stopped waiting');
    case 'dropped':
      return gettext('lost the connection while waiting');
    case 'removed':
      return interpolate(gettext('removed by %(by)s'), { by });
    case 'sent-to-lobby':
      return interpolate(gettext('sent back to the waiting room by %(by)s'), { by });
    default: {
      const leave = {
        disconnected: gettext('left (connection lost)'),
        revoked: gettext('left (their link was withdrawn)'),
      };
      return leave[a.reason] || gettext('left');
    }
  }
}

function activityItem(a) {
  const li = el('li', { 'data-kind': a.kind });
  if (a.at) {
    const at = new Date(a.at).toLocaleTimeString(LANG, { hour: '2-digit', minute: '2-digit' });
    li.append(el('time', { datetime: a.at, text: at }), ' ');
  }
  li.append(el('span', { class: 'name', text: a.name || gettext('A guest') }), ` ${activityWords(a)}`);
  return li;
}

// A live frame adds its items at the top (the list is aria-live: only they are announced);
// a (re)join replaces the list with the server's snapshot.
function renderActivity(frame) {
  const list = $('activity-list');
  if (frame && Array.isArray(frame.items)) {
    list.querySelector('.placeholder')?.remove();
    for (const a of frame.items) list.prepend(activityItem(a));
  } else {
    const items = (room?.activity || []).slice(0, ACTIVITY_SHOWN).map(activityItem);
    if (!items.length) return; // keep the server-rendered placeholder
    list.replaceChildren(...items);
  }
  while (list.children.length > ACTIVITY_SHOWN) list.lastElementChild.remove();
}

function byLabel(by) {
  if (!by) return pgettext('admitted by …', 'someone');
  if (room?.self && by === room.self.participant_id) return pgettext('admitted by …', 'you');
  if (by === cfg.me) return pgettext('admitted by …', 'you');
  if (by.startsWith('staff:')) return interpolate(pgettext('admitted by …', '%(name)s (staff)'), { name: by.slice(6) });
  if (by.startsWith('api:')) return interpolate(pgettext('admitted by …', 'the API (%(name)s)'), { name: by.slice(4) });
  const p = room?.participants.find((x) => x.participant_id === by);
  return p ? p.name || by : by;
}

// Knock alert: a short beep at most every few seconds, and the count in the tab title. -------

let audio = null;
let lastBeep = 0;
const BEEP_EVERY_MS = 4000;
const soundPref = localStorage.getItem('anteroom:sound');
$('sound-toggle').checked = soundPref !== 'off';
$('sound-toggle').addEventListener('change', (e) => {
  localStorage.setItem('anteroom:sound', e.target.checked ? 'on' : 'off');
  if (e.target.checked) ensureAudio();
});
// Browsers only start audio after a user gesture; any click on the page unlocks it.
document.addEventListener('pointerdown', ensureAudio, { once: true });
document.addEventListener('keydown', ensureAudio, { once: true });

function ensureAudio() {
  if (!audio && window.AudioContext) audio = new AudioContext();
  if (audio && audio.state === 'suspended') audio.resume().catch(() => {});
}

function knocked(r) {
  html.dataset.knocks = String(Number(html.dataset.knocks || 0) + 1);
  beep();
  notify(r);
}

// Opt-in desktop notifications (Notification API) for knocks while this tab is hidden: the
// browser asks for permission when the box is ticked; one notification per room at a time
// (`tag`), at most one every few seconds. Clicking it brings the dashboard to the front.
const NOTIFY_KEY = 'anteroom:notify';
const NOTIFY_EVERY_MS = 4000;
let lastNotified = 0;

function setupNotifications() {
  if (!('Notification' in window)) return; // the option is not offered at all
  $('notify-option').hidden = false;
  $('notify-toggle').checked = localStorage.getItem(NOTIFY_KEY) === 'on' && Notification.permission === 'granted';
  $('notify-toggle').addEventListener('change', async (e) => {
    if (!e.target.checked) {
      localStorage.setItem(NOTIFY_KEY, 'off');
      notifyStatus('');
      return;
    }
    const answer = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
    if (answer === 'granted') {
      localStorage.setItem(NOTIFY_KEY, 'on');
      notifyStatus(gettext("You'll get a notification when someone knocks while this tab is in the background."));
    } else {
      e.target.checked = false;
      localStorage.setItem(NOTIFY_KEY, 'off');
      notifyStatus(gettext('Your browser blocks notifications for this site; the sound and the tab title still tell you.'));
    }
  });
}

function notifyStatus(text) {
  $('notify-status').textContent = text;
  $('notify-status').hidden = !text;
}

function notify(r) {
  if (!$('notify-toggle').checked || !document.hidden) return;
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  const now = Date.now();
  if (now - lastNotified < NOTIFY_EVERY_MS) return;
  lastNotified = now;
  const n = $('waiting-list').children.length;
  try {
    const note = new Notification(interpolate(gettext('%(name)s is knocking'), { name: r?.name || gettext('Someone') }), {
      body: interpolate(ngettext('Room %(room)s: %(count)s guest waiting', 'Room %(room)s: %(count)s guests waiting', n), {
        room: cfg.room,
        count: n,
      }),
      tag: `anteroom:${cfg.room}`,
    });
    note.onclick = () => {
      window.focus();
      note.close();
    };
    html.dataset.notified = String(Number(html.dataset.notified || 0) + 1);
  } catch {
    // Some browsers allow notifications only from a service worker: the sound and title remain.
  }
}

setupNotifications();

function beep() {
  if (!$('sound-toggle').checked) return;
  const now = Date.now();
  if (now - lastBeep < BEEP_EVERY_MS) return;
  lastBeep = now;
  try {
    ensureAudio();
    if (!audio) return;
    const t = audio.currentTime;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = 'sine';
    osc.frequency.setValueAtTime(880, t);
    osc.frequency.setValueAtTime(660, t + 0.12);
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.3);
    osc.connect(gain).connect(audio.destination);
    osc.start(t);
    osc.stop(t + 0.32);
    html.dataset.beeps = String(Number(html.dataset.beeps || 0) + 1);
  } catch {
    // no audio device: the title badge still shows
  }
}

// Participants, controls, breakouts -------------------------------------------------------------

function renderPeople() {
  const people = room.participants;
  const items = people.map((p) => {
    // The row's markup is templates/lobby/_person_row.html (<template id="person-row-template">).
    const name = p.name || p.participant_id;
    const li = clone('person-row-template');
    li.dataset.participantId = p.participant_id;
    li.querySelector('[data-slot="avatar"]').replaceWith(avatar(name));
    li.querySelector('.name').textContent = name;
    fill(li, {
      name,
      you: room.self && p.participant_id === room.self.participant_id ? ` ${gettext('(you)')}` : null,
      moderator: p.role === 'moderator',
      paused: p.status === 'paused',
    });
    const form = li.querySelector('form.person');
    if (p.role === 'moderator') form.remove();
    else /** @type {HTMLInputElement} */ (form.querySelector('input[name="client"]')).value = p.participant_id;
    return li;
  });
  $('participant-list').replaceChildren(...items);
  $('participants-empty').hidden = items.length > 0;
  $('participant-count').textContent = String(people.length);
  renderBreakouts(); // the invite form lists the participants
}

function renderControls() {
  const info = room.info || {};
  $('state-paused').textContent = info.paused ? gettext('paused') : gettext('running');
  $('state-audio').textContent = info.audio_muted ? gettext('muted') : gettext('allowed');
  $('state-video').textContent = info.video_muted ? gettext('off') : gettext('allowed');
  const flags = {
    pause: !info.paused,
    resume: info.paused,
    'mute-audio': !info.audio_muted,
    'unmute-audio': info.audio_muted,
    'mute-video': !info.video_muted,
    'unmute-video': info.video_muted,
  };
  for (const [action, visible] of Object.entries(flags)) {
    const b = /** @type {HTMLButtonElement | null} */ (document.querySelector(`#controls button[value="${action}"]`));
    if (b) b.hidden = !visible;
  }
  html.dataset.paused = info.paused ? '1' : '0';
  renderAppointment(info);
}

// The room's appointment window (docs/protocol.md), in this browser's local time.
function renderAppointment(info) {
  const box = $('appointment');
  if (!box) return;
  const opens = info.opens_at ? new Date(Date.parse(info.opens_at) + clockOffset) : null;
  const closes = info.closes_at ? new Date(Date.parse(info.closes_at) + clockOffset) : null;
  box.hidden = !opens && !closes;
  if (box.hidden) return;
  /** @type {Intl.DateTimeFormatOptions} */
  const day = { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' };
  /** @type {Intl.DateTimeFormatOptions} */
  const hm = { hour: '2-digit', minute: '2-digit' };
  const parts = [];
  if (opens && closes) {
    parts.push(
      interpolate(gettext('opens %(opens)s, closes %(closes)s.'), {
        opens: opens.toLocaleString(LANG, day),
        closes: closes.toLocaleTimeString(LANG, hm),
      }),
    );
  } else if (opens) parts.push(interpolate(gettext('opens %(opens)s.'), { opens: opens.toLocaleString(LANG, day) }));
  else parts.push(interpolate(gettext('closes %(closes)s.'), { closes: closes.toLocaleString(LANG, day) }));
  const now = Date.now();
  if (opens && now < opens.getTime()) {
    const from = new Date(opens.getTime() - (cfg.appointment_early || 0) * 1000);
    parts.push(
      interpolate(gettext('Guests may knock from %(at)s and wait for the opening; you may admit them earlier.'), {
        at: from.toLocaleTimeString(LANG, hm),
      }),
    );
  }
  if (closes && now >= closes.getTime()) parts.push(gettext('It has closed: new knocks are refused.'));
  $('appointment-text').textContent = parts.join(' ');
}

function isEarly(r) {
  const opens = room?.info?.opens_at;
  if (!opens || !r.data?.requested_at) return false;
  const at = Date.parse(opens);
  return Date.parse(r.data.requested_at) < at && Date.now() - clockOffset < at;
}

const EXTEND_MINUTES = 5;

function roomLabel(id) {
  const b = (room?.breakouts || []).find((x) => x.id === id);
  return b ? interpolate(gettext('Room %(number)s'), { number: b.number }) : null;
}

function hiddenInput(name, value) {
  return el('input', { type: 'hidden', name, value: String(value) });
}

function postForm(cls, ...children) {
  // A real form (with the CSRF token), so a click still works as a POST if the socket is down.
  return el('form', { method: 'post', class: cls }, hiddenInput('csrfmiddlewaretoken', csrf), ...children);
}

// Re-rendering a list must not take the keyboard focus (or a half-made choice) away.
function keepFocus(container, render) {
  const active = /** @type {HTMLElement | null} */ (document.activeElement);
  const key = active && container.contains(active) ? active.dataset.key : null;
  render();
  if (key) container.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

function renderBreakouts() {
  if (!$('breakout-list')) return; // lecture mode: no breakout panel
  const rooms = room.breakouts || [];
  $('breakout-count').textContent = String(rooms.length);
  $('breakout-empty').hidden = rooms.length > 0;
  keepFocus($('breakout-list'), () => $('breakout-list').replaceChildren(...rooms.map(breakoutCard)));
  const now = Date.now() - clockOffset;
  for (const left of $('breakout-list').querySelectorAll('.left')) tickTimer(left, now);
  $('breakout-all').hidden = !rooms.length;
  $('breakout-extend-form').hidden = !rooms.some((b) => b.ends_at);
  $('breakout-broadcast').hidden = !rooms.length;

  const invitable = room.participants.filter((p) => p.role !== 'moderator');
  // A moderator in a breakout room (this page's own presence, or another's) can be brought back.
  const movable = room.participants.filter((p) => p.role !== 'moderator' || p.breakout_id);
  renderMovers(movable, rooms);
  fillSelect($('bo-client'), invitable.map((p) => [p.participant_id, p.name || p.participant_id]));
  fillSelect($('bo-room'), rooms.map((b) => [b.id, roomLabel(b.id)]));
  $('breakout-invite-form').hidden = !invitable.length;
  $('breakout-people').hidden = !rooms.length || !movable.length;
  renderSelf();
  renderHelp();
}

// The dashboard's own presence may be in a breakout room (after "Join room N").
function renderSelf() {
  const me = room.participants.find((p) => p.participant_id === room.self?.participant_id);
  const inRoom = me?.breakout_id && (room.breakouts || []).find((b) => b.id === me.breakout_id);
  $('breakout-self').hidden = !inRoom;
  if (!inRoom) return;
  const others = (inRoom.members || []).filter((m) => m.participant_id !== me.participant_id);
  const names = others.map((m) => m.name || m.participant_id).join(', ');
  $('breakout-self-text').textContent = names
    ? interpolate(gettext('You are in breakout room %(number)s with %(names)s.'), { number: inRoom.number, names })
    : interpolate(gettext('You are in breakout room %(number)s.'), { number: inRoom.number });
}

$('breakout-self-leave')?.addEventListener('click', async () => {
  if (!live) return;
  try {
    await room.leaveBreakout();
    actionStatus(gettext("You're back in the main room."), 'success');
  } catch (err) {
    actionStatus(errorWords(err), 'error');
  }
});

const INVITATION_GROUPS = [
  ['pending', '.inv-pending'],
  ['accepted', '.inv-accepted'],
  ['rejected', '.inv-declined'],
];

// One card per breakout room, cloned from the server's <template> (templates/breakouts/_card.html).
function breakoutCard(b) {
  const card = $('breakout-card-template').content.firstElementChild.cloneNode(true);
  card.dataset.breakoutId = b.id;
  const members = b.members || [];
  const host = (m) => interpolate(gettext('%(name)s (host)'), { name: m.name || m.participant_id });
  const names = members.map((m) => (m.role === 'moderator' ? host(m) : m.name || m.participant_id)).join(', ');
  card.querySelector('.name').textContent = interpolate(gettext('Room %(number)s'), { number: b.number });
  card.querySelector('.members').textContent = `${members.length}/${b.capacity}: ${names || gettext('empty')}`;
  if (b.ends_at) {
    card.querySelector('.no-timer').remove();
    card.querySelector('.left').dataset.endsAt = b.ends_at;
    card.querySelector('input[name="room_id"]').value = b.id;
    card.querySelector('.room-label').textContent = ' ' + interpolate(gettext('for room %(number)s'), { number: b.number });
    const extend = card.querySelector('button[value="breakout-extend"]');
    extend.dataset.key = `extend:${b.id}`;
  } else {
    card.querySelector('form.timed').remove();
  }
  const invitations = b.invitations || [];
  for (const [status, cls] of INVITATION_GROUPS) {
    const who = invitations.filter((i) => i.status === status).map((i) => i.name || i.participant_id);
    const group = card.querySelector(cls);
    if (who.length) group.querySelector('dd').textContent = who.join(', ');
    else group.remove();
  }
  card.querySelector('.invitations').hidden = !invitations.length;
  return card;
}

function tickTimer(span, serverNow) {
  const left = Math.max(0, Math.ceil((Date.parse(span.dataset.endsAt) - serverNow) / 1000));
  span.textContent = mmss(left);
  span.classList.toggle('low', left <= 60);
}

function renderMovers(people, rooms) {
  const list = $('move-list');
  // Only a destination the moderator picked survives a re-render (not an automatic default).
  const chosen = new Map(
    [...list.querySelectorAll('li[data-participant-id] select[data-picked]')].map((select) => [
      select.closest('li').dataset.participantId,
      select.value,
    ]),
  );
  keepFocus(list, () =>
    list.replaceChildren(
      ...people.map((p, i) => {
        const name = p.name || p.participant_id;
        const here = p.breakout_id || 'main';
        const targets = rooms.filter((b) => b.id !== here).map((b) => [b.id, roomLabel(b.id)]);
        if (here !== 'main') targets.push(['main', gettext('Main room')]);
        const id = `move-${i + 1}`;
        const select = /** @type {HTMLSelectElement} */ (
          el('select', { id, name: 'destination', 'data-key': `move:${p.participant_id}:to` })
        );
        fillSelect(select, targets);
        const keep = chosen.get(p.participant_id);
        if (keep && targets.some(([v]) => v === keep)) {
          select.value = keep;
          select.dataset.picked = '1';
        }
        return el(
          'li',
          { class: 'row mover', 'data-participant-id': p.participant_id },
          el(
            'div',
            { class: 'who' },
            el('span', { class: 'name', text: name }),
            ' ',
            el('span', { class: 'muted where', text: roomLabel(p.breakout_id) || gettext('Main room') }),
          ),
          postForm(
            'actions move',
            hiddenInput('client', p.participant_id),
            el('label', { class: 'vh', for: id, text: interpolate(gettext('Where to move %(name)s'), { name }) }),
            select,
            el(
              'button',
              { type: 'submit', name: 'action', value: 'breakout-move', class: 'secondary', 'data-key': `move:${p.participant_id}` },
              gettext('Move'),
              el('span', { class: 'vh', text: ` ${name}` }),
            ),
          ),
        );
      }),
    ),
  );
  $('breakout-move').hidden = !rooms.length || !people.length;
}

document.addEventListener('change', (ev) => {
  const target = /** @type {HTMLElement} */ (ev.target);
  if (target.matches?.('#move-list select')) target.dataset.picked = '1';
});

function fillSelect(select, options) {
  const keep = select.value;
  select.replaceChildren(...options.map(([value, label]) => el('option', { value, text: label })));
  if (options.some(([value]) => value === keep)) select.value = keep;
}

// Help requests from breakout rooms: stored by the server (one pending per participant until a
// moderator answers it, it expires or the participant leaves its breakout room). The page
// renders the pending ones; the socket adds new ones, replays them on (re)join, and removes
// them on `breakout-help-resolved`. "Answered" is a plain POST when the socket is down.

/** @type {{key: string | undefined, id: string | undefined, name: string | undefined, roomId: string | null, roomLabel: string | null, at: number | null, text?: string}[]} */
let helpRequests = [.../** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('#help-list li.help-request'))].map((li) => ({
  key: li.dataset.key,
  id: li.dataset.helpId,
  name: li.querySelector('.name')?.textContent || li.dataset.key,
  roomId: li.dataset.roomId || null,
  roomLabel: null,
  at: null,
  text: li.querySelector('.who')?.textContent || '',
}));

function addHelp(f) {
  const p = f.participant || {};
  const known = helpRequests.some((h) => h.id === f.id);
  const entry = {
    key: p.participant_id,
    id: f.id,
    name: p.name || p.participant_id || gettext('Someone'),
    roomId: f.room_id,
    roomLabel: roomLabel(f.room_id),
    at: f.requested_at ? Date.parse(f.requested_at) : Date.now(),
  };
  helpRequests = [entry, ...helpRequests.filter((h) => h.key !== entry.key)];
  renderHelp();
  if (known) return; // replayed on (re)join: already listed, no new alert
  actionStatus(
    interpolate(gettext('%(name)s asked for help in %(where)s.'), {
      name: entry.name,
      where: entry.roomLabel || gettext('a breakout room'),
    }),
    'info',
  );
  beep();
}

function resolveHelp(f) {
  const list = $('help-list');
  const row = list?.querySelector(`li[data-key="${CSS.escape(f.participant_id)}"]`);
  if (!row || (f.id && row.dataset.helpId && row.dataset.helpId !== f.id)) return;
  const next = row.nextElementSibling || row.previousElementSibling;
  const hadFocus = row.contains(document.activeElement);
  helpRequests = helpRequests.filter((h) => h.key !== f.participant_id);
  renderHelp();
  if (hadFocus) {
    const target = next && list.querySelector(`li[data-key="${CSS.escape(next.dataset.key)}"] button`);
    (target || $('breakouts-title')).focus();
  }
}

document.addEventListener('click', async (ev) => {
  const target = /** @type {HTMLElement} */ (ev.target);
  const button = /** @type {HTMLButtonElement | null} */ (target.closest?.('button.join-help'));
  if (!button || !live) return;
  const pid = button.closest('li').dataset.key;
  const h = helpRequests.find((x) => x.key === pid);
  button.disabled = true;
  try {
    const d = await room.joinBreakoutForHelp(pid);
    resolveHelp({ participant_id: pid, id: d.id });
    const name = h?.name || gettext('Someone');
    const said = !d.effective
      ? interpolate(gettext("%(name)s's help request had already ended; you stayed where you were."), { name })
      : d.room
        ? interpolate(gettext('You joined breakout room %(number)s to help %(name)s.'), { number: d.room.number, name })
        : interpolate(gettext('You joined their breakout room to help %(name)s.'), { name });
    actionStatus(said, d.effective ? 'success' : 'info');
  } catch (err) {
    actionStatus(errorWords(err), 'error');
  } finally {
    button.disabled = false;
  }
});

function renderHelp() {
  const list = $('help-list');
  if (!list) return;
  keepFocus(list, () => fillHelp(list));
  $('help-count').textContent = String(helpRequests.length);
  $('help-requests').hidden = !helpRequests.length;
  html.dataset.help = String(helpRequests.length);
}

function fillHelp(list) {
  list.replaceChildren(
    ...helpRequests.map((h) => {
      const where = (h.roomId && roomLabel(h.roomId)) || h.roomLabel || gettext('a breakout room');
      const at = h.at ? new Date(h.at).toLocaleTimeString(LANG, { hour: '2-digit', minute: '2-digit' }) : '';
      const answered = el(
        'button',
        { type: 'submit', name: 'action', value: 'breakout-help-answer', class: 'secondary' },
        gettext('Answered'),
        el('span', { class: 'vh', text: ' ' + interpolate(gettext("%(name)s's request"), { name: h.name }) }),
      );
      // Joining moves this page's presence (and its call) into the room: only while connected.
      const join = el(
        'button',
        { type: 'button', class: 'join-help', 'data-key': `join:${h.key}` },
        interpolate(gettext('Join %(where)s'), { where }),
        el('span', { class: 'vh', text: ' ' + interpolate(gettext('to help %(name)s'), { name: h.name }) }),
      );
      join.hidden = !live;
      const who = h.at
        ? el(
            'div',
            { class: 'who' },
            el('span', { class: 'name', text: h.name }),
            el('span', { text: ' ' + interpolate(gettext('asked for help in %(where)s'), { where }) }),
            el('span', { class: 'muted', text: ` · ${at}` }),
          )
        : el('div', { class: 'who', text: h.text });
      return el(
        'li',
        { class: 'row help-request', 'data-key': h.key, 'data-help-id': h.id || '', 'data-room-id': h.roomId || '' },
        who,
        postForm('actions', hiddenInput('client', h.key), join, answered),
      );
    }),
  );
}

// Buttons: over the socket when live, as the form POST otherwise. -------------------------------

const ROOM_CALLS = {
  pause: (r) => r.pause(),
  resume: (r) => r.resume(),
  'mute-audio': (r) => r.mute({ audio: true }),
  'unmute-audio': (r) => r.unmute({ audio: true }),
  'mute-video': (r) => r.mute({ video: true }),
  'unmute-video': (r) => r.unmute({ video: true }),
};

// Notices say what just happened, then go: 8 s (an error 15 s), so an old one never reads as
// the state of now. The server's messages (after a plain POST) go the same way.
const NOTICE_MS = { success: 8000, info: 8000, error: 15000 };
let noticeTimer = null;

function actionStatus(text, kind = 'info') {
  const p = $('action-status');
  p.textContent = text;
  p.className = `notice notice-${kind}`;
  p.hidden = !text;
  clearTimeout(noticeTimer);
  if (text) noticeTimer = setTimeout(() => (p.hidden = true), NOTICE_MS[kind] || NOTICE_MS.info);
}

for (const li of document.querySelectorAll('ul.messages > li')) {
  const kind = [...li.classList].find((c) => c.startsWith('notice-'))?.slice(7) || 'info';
  setTimeout(() => {
    const list = li.parentElement;
    li.remove();
    if (list && !list.children.length) list.remove();
  }, NOTICE_MS[kind] || NOTICE_MS.info);
}

async function perform(action, form) {
  const id = form.querySelector('input[name="request_id"]')?.value;
  if (action === 'admit' || action === 'deny') {
    const reason = form.querySelector('input[name="reason"]')?.value.trim() || undefined;
    const d = await (action === 'admit' ? room.admit(id) : room.deny(id, reason));
    if (!d.effective) {
      removeRow(id);
      const words = {
        canceled: gettext('That guest was no longer waiting; nothing changed.'),
        admitted: gettext('That guest was already admitted; nothing changed.'),
        denied: gettext('That guest was already denied; nothing changed.'),
      };
      actionStatus(words[d.outcome] || words.canceled);
    }
    return;
  }
  if (action === 'admit-all' || action === 'deny-all') {
    $('deny-all-confirm').hidden = true;
    const d = await (action === 'admit-all' ? room.admitAll() : room.denyAll());
    const n = d.count;
    if (n && action === 'admit-all') {
      actionStatus(interpolate(ngettext('%(count)s guest admitted.', '%(count)s guests admitted.', n), { count: n }), 'success');
    } else if (n) {
      actionStatus(interpolate(ngettext('%(count)s guest denied.', '%(count)s guests denied.', n), { count: n }), 'success');
    } else if (action === 'admit-all') {
      actionStatus(gettext('Nobody is waiting; nobody was admitted.'), 'info');
    } else {
      actionStatus(gettext('Nobody is waiting; nobody was denied.'), 'info');
    }
    return;
  }
  if (action === 'lobby-message' || action === 'lobby-message-clear') {
    const text = action === 'lobby-message' ? $('lm-text').value.trim() : '';
    const extra = Number($('lm-extend').value || 0);
    const d = await room.request('lobby-message', { text, extend_minutes: extra });
    showLobbyMessage(d.text);
    $('lm-extend').value = '0';
    let said = d.text
      ? interpolate(gettext('Everyone waiting now sees: “%(text)s”.'), { text: d.text })
      : gettext('The message to everyone waiting is cleared.');
    if (extra) {
      const more = ngettext(
        '%(count)s guest got %(minutes)s more minutes.',
        '%(count)s guests got %(minutes)s more minutes.',
        d.extended,
      );
      said += ' ' + interpolate(more, { count: d.extended, minutes: extra });
    }
    actionStatus(said, 'success');
    return;
  }
  if (action === 'entry-message') {
    const input = form.querySelector('input[name="text"]');
    const text = input.value.trim();
    if (!text) {
      actionStatus(gettext('Write a message for the guest.'), 'error');
      input.focus();
      return;
    }
    await room.request('entry-message', { request_id: id, text });
    input.value = '';
    const who = room.entryRequests.find((x) => x.id === id)?.name || pgettext('message sent to …', 'the guest');
    actionStatus(interpolate(gettext('Message sent to %(name)s.'), { name: who }), 'success');
    return;
  }
  if (action === 'participant-remove' || action === 'participant-to-lobby') {
    const pid = form.querySelector('input[name="client"]').value;
    const name = room.participants.find((p) => p.participant_id === pid)?.name || gettext('The participant');
    await room.request(action, { participant_id: pid });
    const said =
      action === 'participant-remove'
        ? gettext('%(name)s was removed from the room.')
        : gettext('%(name)s is back in the waiting room.');
    actionStatus(interpolate(said, { name }), 'success');
    return;
  }
  if (action.startsWith('breakout-')) {
    await breakoutAction(action, new FormData(form));
    return;
  }
  await ROOM_CALLS[action](room);
}

async function breakoutAction(action, data) {
  const force = data.get('force_join') === 'on';
  if (action === 'breakout-create' || action === 'breakout-create-and-invite') {
    const minutes = Number(data.get('minutes') || 0);
    const options = {
      participants: Number(data.get('participants')),
      maxRooms: Number(data.get('max_rooms')),
      ...(minutes ? { duration: minutes * 60 } : {}),
    };
    if (action === 'breakout-create') {
      const d = await room.createBreakouts(options);
      const n = d.rooms.length;
      actionStatus(interpolate(ngettext('%(count)s breakout room created.', '%(count)s breakout rooms created.', n), { count: n }), 'success');
    } else {
      const d = await room.createAndInviteBreakouts({ ...options, forceJoin: force });
      const people = Object.values(d.assignments || {}).reduce((n, ids) => n + ids.length, 0);
      const rooms = interpolate(ngettext('%(count)s room', '%(count)s rooms', d.rooms.length), { count: d.rooms.length });
      const said = force
        ? ngettext('%(count)s participant moved into %(rooms)s.', '%(count)s participants moved into %(rooms)s.', people)
        : ngettext('%(count)s participant invited to %(rooms)s.', '%(count)s participants invited to %(rooms)s.', people);
      actionStatus(interpolate(said, { count: people, rooms }), 'success');
    }
  } else if (action === 'breakout-invite') {
    const d = await room.inviteToBreakout({ clients: [data.get('client')], roomId: data.get('room_id'), forceJoin: force });
    const names =
      (d.clients || []).map((pid) => room.participants.find((p) => p.participant_id === pid)?.name || pid).join(', ') ||
      gettext('Nobody new');
    const number = (room.breakouts || []).find((b) => b.id === data.get('room_id'))?.number ?? '';
    const said = force
      ? gettext('%(names)s moved into breakout room %(number)s.')
      : gettext('%(names)s invited to breakout room %(number)s.');
    actionStatus(interpolate(said, { names, number }), 'success');
  } else if (action === 'breakout-move') {
    const to = data.get('destination');
    const d = await room.moveToBreakout(data.get('client'), to === 'main' ? null : to);
    const p = d.participant || {};
    const name = p.name || gettext('The participant');
    const number = p.breakout_id && (room.breakouts || []).find((b) => b.id === p.breakout_id)?.number;
    const said = !p.breakout_id
      ? interpolate(gettext('%(name)s is in the main room now.'), { name })
      : number
        ? interpolate(gettext('%(name)s is in breakout room %(number)s now.'), { name, number })
        : interpolate(gettext('%(name)s is in a breakout room now.'), { name });
    actionStatus(said, 'success');
  } else if (action === 'breakout-extend') {
    const minutes = Number(data.get('minutes') || EXTEND_MINUTES);
    const roomId = data.get('room_id') || undefined;
    const d = await room.extendBreakouts({ roomId, seconds: minutes * 60 });
    const numbers = (d.rooms || []).map((b) => b.number).join(', ');
    let said = gettext('No breakout room has a timer; nothing was extended.');
    if (numbers && d.rooms.length === 1) {
      said = ngettext('%(count)s minute added (room %(numbers)s).', '%(count)s minutes added (room %(numbers)s).', minutes);
    } else if (numbers) {
      said = ngettext('%(count)s minute added (rooms %(numbers)s).', '%(count)s minutes added (rooms %(numbers)s).', minutes);
    }
    actionStatus(interpolate(said, { count: minutes, numbers }), 'success');
  } else if (action === 'breakout-help-answer') {
    const pid = data.get('client');
    const h = helpRequests.find((x) => x.key === pid);
    const number = (room.breakouts || []).find((b) => b.id === h?.roomId)?.number;
    const where = number ? interpolate(gettext('breakout room %(number)s'), { number }) : gettext('a breakout room');
    const name = h?.name || gettext('Someone');
    const d = await room.answerBreakoutHelp(pid);
    resolveHelp({ participant_id: pid, id: d.id });
    const said = d.effective
      ? gettext("%(name)s's help request (%(where)s) is marked as answered.")
      : gettext("%(name)s's help request (%(where)s) had already ended.");
    actionStatus(interpolate(said, { name, where }), 'success');
  } else if (action === 'breakout-broadcast') {
    const d = await room.broadcastToBreakouts(data.get('text'));
    $('bo-text').value = '';
    actionStatus(
      interpolate(ngettext('Message sent to %(count)s breakout room.', 'Message sent to %(count)s breakout rooms.', d.rooms), {
        count: d.rooms,
      }),
      'success',
    );
  } else if (action === 'breakout-clear-all') {
    const d = await room.clearBreakouts();
    actionStatus(interpolate(gettext('Everyone is back in the main room (%(count)s returned).'), { count: d.count }), 'success');
  } else if (action === 'breakout-destroy-all') {
    const d = await room.destroyBreakouts();
    actionStatus(interpolate(gettext('Breakout rooms closed; %(count)s returned to the main room.'), { count: d.count }), 'success');
  }
}

function showLobbyMessage(text) {
  $('lobby-message-current').textContent = text
    ? interpolate(gettext('Everyone waiting sees: “%(text)s”'), { text })
    : gettext('Nobody waiting sees a message from you.');
  if (document.activeElement !== $('lm-text')) $('lm-text').value = text || '';
  $('lm-clear').hidden = !text;
}

function guests(n) {
  return interpolate(ngettext('%(count)s guest', '%(count)s guests', n), { count: n });
}

// Deny all asks first (as the page does without JavaScript): the question's own button denies.
function askDenyAll() {
  const n = $('waiting-list').children.length;
  if (!n) {
    actionStatus(gettext('Nobody is waiting; nobody was denied.'), 'info');
    return;
  }
  $('deny-all-count').textContent = guests(n);
  $('deny-all-confirm').hidden = false;
  $('deny-all-yes').focus();
}

$('deny-all-no').addEventListener('click', (ev) => {
  if (!live) return;
  ev.preventDefault();
  $('deny-all-confirm').hidden = true;
  /** @type {HTMLButtonElement | null} */ (document.querySelector('button[value="deny-all"]:not(#deny-all-yes)'))?.focus();
});

document.addEventListener('submit', async (ev) => {
  const form = /** @type {HTMLFormElement} */ (ev.target);
  const action = /** @type {HTMLButtonElement | null} */ (ev.submitter)?.value;
  if (!live || !room || !action || !form.closest('main')) return;
  ev.preventDefault();
  if (action === 'deny-all' && !form.querySelector('input[name="confirm"]')) {
    askDenyAll();
    return;
  }
  const buttons = [...form.querySelectorAll('button')];
  buttons.forEach((b) => (b.disabled = true));
  try {
    await perform(action, form);
  } catch (err) {
    if (err.code === 'DISCONNECTED' || err.code === 'TIMEOUT') {
      // Fall back to the plain POST, which does the same through the same service.
      form.append(el('input', { type: 'hidden', name: 'action', value: action }));
      form.submit();
      return;
    }
    actionStatus(errorWords(err), 'error');
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
});

// The empty waiting list offers the guest link with a Copy button (without this script the
// link is a read-only field to select and copy by hand). The Clipboard API needs a secure
// context (https or localhost); elsewhere the field's text is selected and copied the old way.
async function copyInviteLink() {
  const field = $('invite-link');
  let copied = false;
  try {
    await navigator.clipboard.writeText(field.value);
    copied = true;
  } catch {
    field.select();
    copied = document.execCommand('copy');
  }
  $('copy-status').textContent = copied
    ? gettext('Guest link copied. Paste it into an e-mail or a chat message to invite someone.')
    : gettext('Could not copy: the link is selected, press Ctrl+C (⌘C on a Mac) to copy it.');
}
$('copy-invite-link').hidden = false;
$('copy-invite-link').addEventListener('click', copyInviteLink);
$('invite-link').addEventListener('focus', (e) => e.target.select());

// Server-rendered rows tick too until the socket replaces them.
for (const row of $('waiting-list').children) tickRow(row, Date.now() - clockOffset);
for (const left of document.querySelectorAll('#breakout-list .left')) tickTimer(left, Date.now() - clockOffset);
updateCount();
renderHelp();
connect();
