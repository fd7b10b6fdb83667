// The moderator dashboard made live. The page works without this script (every button is a
// form POST); once the socket is in, the buttons go over it and the lists follow events.
import { avatar } from './avatar.js';
import { join } from './client.js';
import { gettext } from './i18n.js';
import './media-call.js'; // templates/lobby/_call.html
import { $, cfg, clone, clockOffset, el, fill, html, mmss } from './ui.js';

const baseTitle =
  document.querySelector('meta[name="anteroom:title"]')?.content || `${cfg.room} · Anteroom dashboard`;
const csrf = document.querySelector('input[name="csrfmiddlewaretoken"]')?.value || '';

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
  status('Connecting…', '');
  try {
    room = await join({
      room: cfg.room,
      token: cfg.token || undefined,
      staff: cfg.staff && !cfg.token,
      clockOffset,
    });
  } catch (err) {
    status(`Not connected (${err.message}) — the buttons still work`, 'down');
    return;
  }
  live = true;
  status('Connected', 'live');
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
      status('Connection lost — reconnecting…', 'down');
    })
    .on('reconnected', () => {
      live = true;
      status('Connected', 'live');
      renderAll();
    })
    .on('closed', (d) => {
      live = false;
      status(`Disconnected (${d.error ? d.error.message : d.code}) — reload to reconnect`, 'down');
    });
  renderAll();
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
  const name = r.name || 'Guest';
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
  const dl = row.querySelector('dl.meta');
  if (!meta.length) dl.remove();
  dl.hidden = false;
  dl.replaceChildren(
    ...meta.map(([k, v]) =>
      el('div', {}, el('dt', { text: k }), el('dd', { text: typeof v === 'string' ? v : JSON.stringify(v) })),
    ),
  );
  row.querySelector('input[name="request_id"]').value = r.id;
  for (const part of ['reason', 'msg']) {
    row.querySelector(`[data-id="${part}"]`).id = `${part}-${r.id}`;
    row.querySelector(`label[data-for="${part}"]`).htmlFor = `${part}-${r.id}`;
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
  document.title = n > 0 ? `(${n}) waiting · ${baseTitle}` : baseTitle;
  html.dataset.waiting = String(n);
}

function fmtWaited(s) {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
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
const LEAVE_WORDS = {
  left: 'left',
  disconnected: 'left (connection lost)',
  revoked: 'left (their link was withdrawn)',
};

function activityWords(a) {
  const by = a.by ? byLabel(a.by) : 'someone';
  switch (a.kind) {
    case 'admitted':
      return `admitted by ${by}`;
    case 'denied':
      return `denied by ${by}${a.reason ? ` (“${a.reason}”)` : ''}`;
    case 'timed-out':
      return 'timed out (nobody answered)';
    case 'canceled':
      return 'stopped waiting';
    case 'dropped':
      return 'lost the connection while waiting';
    case 'removed':
      return `removed by ${by}`;
    case 'sent-to-lobby':
      return `sent back to the waiting room by ${by}`;
    default:
      return LEAVE_WORDS[a.reason] || 'left';
  }
}

function activityItem(a) {
  const li = el('li', { 'data-kind': a.kind });
  if (a.at) {
    const at = new Date(a.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    li.append(el('time', { datetime: a.at, text: at }), ' ');
  }
  li.append(el('span', { class: 'name', text: a.name || 'A guest' }), ` ${activityWords(a)}`);
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
  if (!by) return 'someone';
  if (room?.self && by === room.self.participant_id) return 'you';
  if (by === cfg.me) return 'you';
  if (by.startsWith('staff:')) return `${by.slice(6)} (staff)`;
  if (by.startsWith('api:')) return `the API (${by.slice(4)})`;
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
      notifyStatus("You'll get a notification when someone knocks while this tab is in the background.");
    } else {
      e.target.checked = false;
      localStorage.setItem(NOTIFY_KEY, 'off');
      notifyStatus('Your browser blocks notifications for this site; the sound and the tab title still tell you.');
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
    const note = new Notification(`${r?.name || 'Someone'} is knocking`, {
      body: `Room ${cfg.room}: ${guests(n)} waiting`,
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
      you: Boolean(room.self && p.participant_id === room.self.participant_id),
      moderator: p.role === 'moderator',
      paused: p.status === 'paused',
    });
    const form = li.querySelector('form.person');
    if (p.role === 'moderator') form.remove();
    else form.querySelector('input[name="client"]').value = p.participant_id;
    return li;
  });
  $('participant-list').replaceChildren(...items);
  $('participants-empty').hidden = items.length > 0;
  $('participant-count').textContent = String(people.length);
  renderBreakouts(); // the invite form lists the participants
}

function renderControls() {
  const info = room.info || {};
  $('state-paused').textContent = info.paused ? 'paused' : 'running';
  $('state-audio').textContent = info.audio_muted ? 'muted' : 'allowed';
  $('state-video').textContent = info.video_muted ? 'off' : 'allowed';
  const flags = {
    pause: !info.paused,
    resume: info.paused,
    'mute-audio': !info.audio_muted,
    'unmute-audio': info.audio_muted,
    'mute-video': !info.video_muted,
    'unmute-video': info.video_muted,
  };
  for (const [action, visible] of Object.entries(flags)) {
    const b = document.querySelector(`#controls button[value="${action}"]`);
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
  const day = { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' };
  const hm = { hour: '2-digit', minute: '2-digit' };
  const parts = [];
  if (opens && closes) parts.push(`opens ${opens.toLocaleString([], day)}, closes ${closes.toLocaleTimeString([], hm)}.`);
  else if (opens) parts.push(`opens ${opens.toLocaleString([], day)}.`);
  else parts.push(`closes ${closes.toLocaleString([], day)}.`);
  const now = Date.now();
  if (opens && now < opens.getTime()) {
    const from = new Date(opens.getTime() - (cfg.appointment_early || 0) * 1000);
    parts.push(`Guests may knock from ${from.toLocaleTimeString([], hm)} and wait for the opening; you may admit them earlier.`);
  }
  if (closes && now >= closes.getTime()) parts.push('It has closed: new knocks are refused.');
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
  return b ? `Room ${b.number}` : null;
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
  const active = document.activeElement;
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
  fillSelect($('bo-room'), rooms.map((b) => [b.id, `Room ${b.number}`]));
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
  $('breakout-self-text').textContent = `You are in breakout room ${inRoom.number}${names ? ` with ${names}` : ''}.`;
}

$('breakout-self-leave')?.addEventListener('click', async () => {
  if (!live) return;
  try {
    await room.leaveBreakout();
    actionStatus("You're back in the main room.", 'success');
  } catch (err) {
    actionStatus(err.message, 'error');
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
  const names = members.map((m) => `${m.name || m.participant_id}${m.role === 'moderator' ? ' (host)' : ''}`).join(', ');
  card.querySelector('.name').textContent = `Room ${b.number}`;
  card.querySelector('.members').textContent = `${members.length}/${b.capacity}: ${names || 'empty'}`;
  if (b.ends_at) {
    card.querySelector('.no-timer').remove();
    card.querySelector('.left').dataset.endsAt = b.ends_at;
    card.querySelector('input[name="room_id"]').value = b.id;
    card.querySelector('.room-label').textContent = ` for room ${b.number}`;
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
        const targets = rooms.filter((b) => b.id !== here).map((b) => [b.id, `Room ${b.number}`]);
        if (here !== 'main') targets.push(['main', 'Main room']);
        const id = `move-${i + 1}`;
        const select = el('select', { id, name: 'destination', 'data-key': `move:${p.participant_id}:to` });
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
            el('span', { class: 'muted where', text: roomLabel(p.breakout_id) || 'Main room' }),
          ),
          postForm(
            'actions move',
            hiddenInput('client', p.participant_id),
            el('label', { class: 'vh', for: id, text: `Where to move ${name}` }),
            select,
            el(
              'button',
              { type: 'submit', name: 'action', value: 'breakout-move', class: 'secondary', 'data-key': `move:${p.participant_id}` },
              'Move',
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
  if (ev.target.matches?.('#move-list select')) ev.target.dataset.picked = '1';
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

let helpRequests = [...document.querySelectorAll('#help-list li.help-request')].map((li) => ({
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
    name: p.name || p.participant_id || 'Someone',
    roomId: f.room_id,
    roomLabel: roomLabel(f.room_id),
    at: f.requested_at ? Date.parse(f.requested_at) : Date.now(),
  };
  helpRequests = [entry, ...helpRequests.filter((h) => h.key !== entry.key)];
  renderHelp();
  if (known) return; // replayed on (re)join: already listed, no new alert
  actionStatus(`${entry.name} asked for help in ${entry.roomLabel || 'a breakout room'}.`, 'info');
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
  const button = ev.target.closest?.('button.join-help');
  if (!button || !live) return;
  const pid = button.closest('li').dataset.key;
  const h = helpRequests.find((x) => x.key === pid);
  button.disabled = true;
  try {
    const d = await room.joinBreakoutForHelp(pid);
    resolveHelp({ participant_id: pid, id: d.id });
    const where = d.room ? `breakout room ${d.room.number}` : 'their breakout room';
    actionStatus(
      d.effective
        ? `You joined ${where} to help ${h?.name || 'them'}.`
        : `${h?.name || 'That'}'s help request had already ended; you stayed where you were.`,
      d.effective ? 'success' : 'info',
    );
  } catch (err) {
    actionStatus(err.message, 'error');
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
      const where = (h.roomId && roomLabel(h.roomId)) || h.roomLabel || 'a breakout room';
      const at = h.at ? new Date(h.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
      const answered = el(
        'button',
        { type: 'submit', name: 'action', value: 'breakout-help-answer', class: 'secondary' },
        'Answered',
        el('span', { class: 'vh', text: ` ${h.name}'s request` }),
      );
      // Joining moves this page's presence (and its call) into the room: only while connected.
      const join = el(
        'button',
        { type: 'button', class: 'join-help', 'data-key': `join:${h.key}` },
        `Join ${where}`,
        el('span', { class: 'vh', text: ` to help ${h.name}` }),
      );
      join.hidden = !live;
      const who = h.at
        ? el(
            'div',
            { class: 'who' },
            el('span', { class: 'name', text: h.name }),
            el('span', { text: ` asked for help in ${where}` }),
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
      const words = d.outcome === 'canceled' ? 'no longer waiting' : `already ${d.outcome}`;
      actionStatus(`That guest was ${words}; nothing changed.`);
    }
    return;
  }
  if (action === 'admit-all' || action === 'deny-all') {
    $('deny-all-confirm').hidden = true;
    const d = await (action === 'admit-all' ? room.admitAll() : room.denyAll());
    const done = action === 'admit-all' ? 'admitted' : 'denied';
    if (d.count) actionStatus(`${guests(d.count)} ${done}.`, 'success');
    else actionStatus(`Nobody is waiting; nobody was ${done}.`, 'info');
    return;
  }
  if (action === 'lobby-message' || action === 'lobby-message-clear') {
    const text = action === 'lobby-message' ? $('lm-text').value.trim() : '';
    const extra = Number($('lm-extend').value || 0);
    const d = await room.request('lobby-message', { text, extend_minutes: extra });
    showLobbyMessage(d.text);
    $('lm-extend').value = '0';
    let said = d.text ? `Everyone waiting now sees: “${d.text}”.` : 'The message to everyone waiting is cleared.';
    if (extra) said += ` ${guests(d.extended)} got ${extra} more minutes.`;
    actionStatus(said, 'success');
    return;
  }
  if (action === 'entry-message') {
    const input = form.querySelector('input[name="text"]');
    const text = input.value.trim();
    if (!text) {
      actionStatus('Write a message for the guest.', 'error');
      input.focus();
      return;
    }
    await room.request('entry-message', { request_id: id, text });
    input.value = '';
    const who = room.entryRequests.find((x) => x.id === id)?.name || 'the guest';
    actionStatus(`Message sent to ${who}.`, 'success');
    return;
  }
  if (action === 'participant-remove' || action === 'participant-to-lobby') {
    const pid = form.querySelector('input[name="client"]').value;
    const who = room.participants.find((p) => p.participant_id === pid)?.name || 'The participant';
    await room.request(action, { participant_id: pid });
    actionStatus(
      action === 'participant-remove' ? `${who} was removed from the room.` : `${who} is back in the waiting room.`,
      'success',
    );
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
      actionStatus(`${plural(d.rooms.length, 'breakout room')} created.`, 'success');
    } else {
      const d = await room.createAndInviteBreakouts({ ...options, forceJoin: force });
      const people = Object.values(d.assignments || {}).reduce((n, ids) => n + ids.length, 0);
      actionStatus(`${plural(people, 'participant')} ${force ? 'moved into' : 'invited to'} ${plural(d.rooms.length, 'room')}.`, 'success');
    }
  } else if (action === 'breakout-invite') {
    const d = await room.inviteToBreakout({ clients: [data.get('client')], roomId: data.get('room_id'), forceJoin: force });
    const names = (d.clients || []).map((pid) => room.participants.find((p) => p.participant_id === pid)?.name || pid).join(', ') || 'Nobody new';
    const where = `breakout ${(roomLabel(data.get('room_id')) || 'a room').toLowerCase()}`;
    actionStatus(force ? `${names} moved into ${where}.` : `${names} invited to ${where}.`, 'success');
  } else if (action === 'breakout-move') {
    const to = data.get('destination');
    const d = await room.moveToBreakout(data.get('client'), to === 'main' ? null : to);
    const p = d.participant || {};
    const label = p.breakout_id && roomLabel(p.breakout_id);
    const where = p.breakout_id ? (label ? `breakout ${label.toLowerCase()}` : 'a breakout room') : 'the main room';
    actionStatus(`${p.name || 'The participant'} is in ${where} now.`, 'success');
  } else if (action === 'breakout-extend') {
    const minutes = Number(data.get('minutes') || EXTEND_MINUTES);
    const roomId = data.get('room_id') || undefined;
    const d = await room.extendBreakouts({ roomId, seconds: minutes * 60 });
    const numbers = (d.rooms || []).map((b) => b.number).join(', ');
    actionStatus(
      numbers
        ? `${minutes} minute${minutes === 1 ? '' : 's'} added (room${d.rooms.length === 1 ? '' : 's'} ${numbers}).`
        : 'No breakout room has a timer; nothing was extended.',
      'success',
    );
  } else if (action === 'breakout-help-answer') {
    const pid = data.get('client');
    const h = helpRequests.find((x) => x.key === pid);
    const about = `${h?.name || 'That'}'s help request (${(roomLabel(h?.roomId) || 'a breakout room').replace(/^Room/, 'breakout room')})`;
    const d = await room.answerBreakoutHelp(pid);
    resolveHelp({ participant_id: pid, id: d.id });
    actionStatus(d.effective ? `${about} is marked as answered.` : `${about} had already ended.`, 'success');
  } else if (action === 'breakout-broadcast') {
    const d = await room.broadcastToBreakouts(data.get('text'));
    $('bo-text').value = '';
    actionStatus(`Message sent to ${d.rooms} breakout room${d.rooms === 1 ? '' : 's'}.`, 'success');
  } else if (action === 'breakout-clear-all') {
    const d = await room.clearBreakouts();
    actionStatus(`Everyone is back in the main room (${d.count} returned).`, 'success');
  } else if (action === 'breakout-destroy-all') {
    const d = await room.destroyBreakouts();
    actionStatus(`Breakout rooms closed; ${d.count} returned to the main room.`, 'success');
  }
}

function showLobbyMessage(text) {
  $('lobby-message-current').textContent = text
    ? `Everyone waiting sees: “${text}”`
    : 'Nobody waiting sees a message from you.';
  if (document.activeElement !== $('lm-text')) $('lm-text').value = text || '';
  $('lm-clear').hidden = !text;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function guests(n) {
  return plural(n, 'guest');
}

// Deny all asks first (as the page does without JavaScript): the question's own button denies.
function askDenyAll() {
  const n = $('waiting-list').children.length;
  if (!n) {
    actionStatus('Nobody is waiting; nobody was denied.', 'info');
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
  document.querySelector('button[value="deny-all"]:not(#deny-all-yes)')?.focus();
});

document.addEventListener('submit', async (ev) => {
  const form = ev.target;
  const action = ev.submitter?.value;
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
    actionStatus(err.message, 'error');
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
