// @ts-check
// The guest knock page (/r/<room>/): name → knock → wait (queue position, time left, Cancel)
// → in the room, or a clear outcome with a way to try again. Everything shown is text.
import { avatar } from './avatar.js';
import { join, preauth } from './client.js';
import { errorText, gettext, interpolate, LANG, ngettext } from './i18n.js';
import './device-check.js'; // templates/lobby/_devicecheck.html
import './media-call.js'; // templates/lobby/_call.html
import { $, cfg, clockOffset, el, html, mmss, setText } from './ui.js';

const STORE_KEY = `anteroom:resume:${cfg.room}`;
const RESUME_FOR_MS = 15 * 60 * 1000;

// A token in the link (?t= or #t=) is read once, then removed from the address bar and from
// this history entry, so it is not left on screen, in bookmarks or in screen shares.
const token = takeToken();
let tokenName = tokenClaims(token).name || '';
let level = cfg.level;
let controller = null;
let room = null;
let countdown = null;
let expiresAt = null;
// The breakout room's end as the server last said ({roomId, iso}): from `breakout-joined` or the
// snapshot, then `breakout-ending` / `breakout-extended` (client.js keeps the room as it joined).
let breakoutEnds = null;
let breakoutTick = null;
let movedOut = false;

function takeToken() {
  const url = new URL(window.location.href);
  const hash = new URLSearchParams(url.hash.slice(1));
  const value = url.searchParams.get('t') || hash.get('t');
  if (url.searchParams.has('t') || hash.has('t')) {
    url.searchParams.delete('t');
    hash.delete('t');
    url.hash = hash.toString();
    window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
  }
  return value || null;
}

function tokenClaims(jwt) {
  // Display only (the server verifies the token): a name in the token is the name shown.
  if (!jwt) return {};
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : {};
  } catch {
    return {};
  }
}

// Screens ---------------------------------------------------------------------------------------

const STEPS = ['form', 'waiting', 'room', 'outcome'];

function show(step, focusId) {
  for (const s of STEPS) $(`step-${s}`).hidden = s !== step;
  html.dataset.state = step;
  const target = focusId && $(focusId);
  if (target) target.focus();
}

// What the guest reads at the end, by the outcome's code (codes are never translated; the
// server's English `message` is only shown for a code not listed here). A function, so the
// translations are looked up once the catalogue has loaded.
function outcomes() {
  const knockAgain = gettext('Knock again');
  const tryAgain = gettext('Try again');
  const withoutLink = gettext('Continue without the link');
  const newLink = gettext('Ask the host for a new link.');
  const brokenLink = gettext("This invitation link doesn't work");
  const stopped = [gettext('You stopped waiting'), gettext('Your knock was withdrawn.'), knockAgain];
  return {
    ENTRY_DENIED: [gettext("The host didn't let you in"), gettext('Your request to join was declined.'), knockAgain],
    ENTRY_TIMEOUT: [
      gettext('Nobody answered in time'),
      gettext('The host may be busy or away. You can knock again.'),
      knockAgain,
    ],
    ENTRY_RATE_LIMITED: [
      gettext('Too many knocks'),
      gettext("You've knocked several times in the last few minutes. Wait a few minutes, then try again."),
      tryAgain,
    ],
    ACCESS_DENIED: [
      gettext('This room is private'),
      gettext('You need an invitation link from the host to enter.'),
      tryAgain,
    ],
    INVALID_TOKEN: [
      brokenLink,
      gettext('The link may be incomplete or meant for another room. Ask the host for a new one.'),
      withoutLink,
    ],
    TOKEN_EXPIRED: [gettext('This invitation link has expired'), newLink, withoutLink],
    TOKEN_REVOKED: [gettext('This invitation link was withdrawn'), newLink, withoutLink],
    INVALID_ENTRY_CLAIM: [
      brokenLink,
      gettext('The link has invalid settings. Ask the host for a new one.'),
      withoutLink,
    ],
    ROOM_NOT_FOUND: [gettext('This room no longer exists'), gettext('The host may have closed it.'), tryAgain],
    // An appointment window: too early to wait yet, or over (the texts with times are below).
    ROOM_NOT_OPEN: [gettext("The room isn't open yet"), gettext('Come back closer to your appointment time.'), tryAgain],
    ROOM_CLOSED: [
      gettext('This room is closed'),
      gettext('The appointment time is over. Ask the host for a new appointment.'),
      tryAgain,
    ],
    AbortError: stopped,
    CANCELED: stopped,
    NETWORK_ERROR: [
      gettext("Can't reach the server"),
      gettext('Check your connection, then try again.'),
      tryAgain,
    ],
    LEFT: [gettext('You left the room'), gettext('Thanks for joining.'), gettext('Join again')],
    PARTICIPANT_REMOVED: [
      gettext('The host removed you from the room'),
      gettext('You can knock again; the host decides whether to let you back in.'),
      knockAgain,
    ],
    REPLACED: [
      gettext('You joined from somewhere else'),
      gettext('You opened this room in another tab or device, so this page stopped.'),
      gettext('Join here again'),
    ],
  };
}

let dropToken = false;

// "in 45 seconds", "in about 4 minutes (at 15:32)": when a rate-limited guest may knock again.
function retryWords(seconds) {
  if (!Number.isFinite(seconds) || seconds <= 0) return gettext('in a few minutes');
  if (seconds < 60) {
    return interpolate(ngettext('in %(count)s second', 'in %(count)s seconds', seconds), { count: seconds });
  }
  const minutes = Math.ceil(seconds / 60);
  const at = new Date(Date.now() + seconds * 1000).toLocaleTimeString(LANG, { hour: '2-digit', minute: '2-digit' });
  return interpolate(
    ngettext('in about %(count)s minute (at %(time)s)', 'in about %(count)s minutes (at %(time)s)', minutes),
    { count: minutes, time: at },
  );
}

function outcome(code, detail, details = {}) {
  stopCountdown();
  breakoutEnds = null;
  renderBreakoutTimer();
  forget();
  const [title, text, again] = outcomes()[code] || [
    gettext('Something went wrong'),
    detail || gettext('Please try again.'),
    gettext('Try again'),
  ];
  setText('outcome-title', title);
  let body = text;
  if (code === 'ENTRY_RATE_LIMITED') {
    body = interpolate(
      gettext("You've knocked several times in the last few minutes. You can knock again %(when)s."),
      { when: retryWords(Number(details?.retry_after)) },
    );
  }
  const serverTime = (iso) => (iso ? clockTime(new Date(Date.parse(iso) + clockOffset)) : null);
  if (code === 'ROOM_NOT_OPEN' && details?.opens_at && details?.knock_from) {
    body = interpolate(
      gettext('The room opens at %(opens)s. You can knock and wait from %(from)s (%(when)s).'),
      {
        opens: serverTime(details.opens_at),
        from: serverTime(details.knock_from),
        when: untilWords(Number(details.retry_after) * 1000),
      },
    );
  }
  if (code === 'ROOM_CLOSED' && details?.closed_at) {
    body = interpolate(
      gettext('The appointment time ended at %(time)s. Ask the host for a new appointment.'),
      { time: serverTime(details.closed_at) },
    );
  }
  if (code === 'ENTRY_DENIED' && detail && !/declined your request/.test(detail)) {
    body = interpolate(gettext('%(text)s Message from the host: “%(reason)s”'), { text, reason: detail });
  }
  setText('outcome-text', body);
  setText('again-button', again);
  dropToken = ['INVALID_TOKEN', 'TOKEN_EXPIRED', 'TOKEN_REVOKED', 'INVALID_ENTRY_CLAIM'].includes(
    code,
  );
  html.dataset.outcome = code;
  show('outcome', 'outcome-title');
}

// Form ------------------------------------------------------------------------------------------

function prepareForm() {
  const usable = dropToken ? null : token;
  const named = usable && tokenName;
  $('name-field').hidden = Boolean(named);
  $('token-name').hidden = !named;
  if (named) setText('token-name', interpolate(gettext('You are joining as %(name)s.'), { name: tokenName }));
  const direct = level === 'full';
  setText('form-title', direct ? gettext('Join the room') : gettext('Knock to enter'));
  setText(
    'form-intro',
    direct
      ? gettext('This room is open to you: you go straight in.')
      : gettext('The host will see your name and let you in. You can wait on this page.'),
  );
  setText('knock-button', direct ? gettext('Enter') : gettext('Knock to enter'));
  // An appointment window that has not opened yet (the page's config): say so before the knock.
  const opens = cfg.opens_at ? new Date(Date.parse(cfg.opens_at) + clockOffset) : null;
  const early = !direct && opens && opens.getTime() > Date.now();
  $('form-window').hidden = !early;
  if (early) {
    const from = new Date(Date.parse(cfg.knock_from) + clockOffset);
    setText(
      'form-window',
      from.getTime() > Date.now()
        ? interpolate(gettext('The room opens at %(opens)s. You can knock and wait from %(from)s.'), {
            opens: clockTime(opens),
            from: clockTime(from),
          })
        : interpolate(gettext('The room opens at %(opens)s. You can knock now and wait for it.'), {
            opens: clockTime(opens),
          }),
    );
  }
  $('knock-button').disabled = false;
  if (!$('name').value) $('name').value = stored('anteroom:name') || '';
}

function showForm(focus = true) {
  prepareForm();
  delete html.dataset.outcome;
  show('form', focus ? ($('name-field').hidden ? 'knock-button' : 'name') : null);
}

$('knock-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const usable = dropToken ? null : token;
  const name = $('name').value.trim();
  if (!(usable && tokenName) && !name) {
    $('name').setAttribute('aria-invalid', 'true');
    $('name-error').hidden = false;
    $('name').focus();
    return;
  }
  $('name').removeAttribute('aria-invalid');
  $('name-error').hidden = true;
  // This tab only: on a shared computer the next person should not find your name.
  if (name) store('anteroom:name', name);
  const note = $('note').value.trim();
  // the device check (device-check.js)
  const devices = /** @type {any} */ (window).anteroomDevices?.summary();
  const metadata = { ...(note ? { note } : {}), ...(devices ? { devices } : {}) };
  enter({ token: usable, name, metadata: Object.keys(metadata).length ? metadata : undefined });
});

$('again-button').addEventListener('click', async () => {
  if (dropToken) level = cfg.level; // without the link, the room treats us as anyone else
  if (html.dataset.outcome === 'ACCESS_DENIED' || level === 'none') {
    // The room may have opened (or knocking been turned on) since.
    await refreshLevel();
    if (level === 'none') {
      outcome('ACCESS_DENIED');
      return;
    }
  }
  showForm();
});

async function refreshLevel() {
  try {
    const access = await preauth({ room: cfg.room, token: dropToken ? undefined : token });
    level = access.level;
  } catch (err) {
    if (err.code) outcome(err.code, err.message);
  }
}

// Knock and wait --------------------------------------------------------------------------------

/**
 * Knock (or enter) with these credentials, and follow the outcome on the page.
 * @param {{token?: string, name?: string, metadata?: Record<string, any>, resume?: string}} how
 */
function enter({ token: tok, name, metadata, resume }) {
  $('knock-button').disabled = true;
  $('cancel-button').disabled = false;
  controller = new AbortController();
  let first = true;
  join({
    room: cfg.room,
    token: tok || undefined,
    name,
    metadata,
    resume,
    clockOffset,
    signal: controller.signal,
    onWaiting(info, r) {
      remember(r.resumeKey, tok, name);
      expiresAt = info.expiresAt;
      waitingRoom = r;
      if (first) {
        first = false;
        prepareRename(name);
        if (html.dataset.state !== 'waiting') show('waiting', 'waiting-title');
        startCountdown();
      }
      statusPrefix = '';
      renderWaiting(info);
      html.dataset.position = info.position ?? '';
      renderHostWords(info);
    },
  }).then(
    (r) => inRoom(r, tok, name),
    (err) => {
      controller = null;
      outcome(err.name === 'AbortError' ? 'AbortError' : err.code, err.message, err.details);
    },
  );
}

// Renaming while waiting (`update-name`): the host's row changes; nothing else does.
let waitingRoom = null;

function prepareRename(name) {
  const fromToken = Boolean(!dropToken && token && tokenName);
  $('rename-form').hidden = fromToken;
  $('rename').value = fromToken ? tokenName : name || '';
  setText('rename-status', '');
}

$('rename-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const name = $('rename').value.trim();
  if (!name) {
    setText('rename-status', gettext('Please enter a name.'));
    $('rename').focus();
    return;
  }
  if (!waitingRoom) return;
  $('rename-button').disabled = true;
  try {
    const d = await waitingRoom.rename(name);
    store('anteroom:name', d.name);
    $('name').value = d.name;
    setText('rename-status', interpolate(gettext('The host now sees you as “%(name)s”.'), { name: d.name }));
  } catch (err) {
    setText(
      'rename-status',
      interpolate(gettext('Your name was not changed: %(why)s'), { why: err.message || gettext('try again') }),
    );
  } finally {
    $('rename-button').disabled = false;
  }
});

// The host's words while waiting: to everyone waiting, and to this guest alone. Text only.
// "About 6 minutes": queue position × the room's recent median time to admit (the server sends
// that median only when it has enough recent admissions; otherwise nothing is shown).
function renderEstimate(info) {
  const per = Number(info.secondsPerGuest);
  const show = info.secondsPerGuest != null && Number.isFinite(per) && per >= 0 && info.position;
  $('wait-estimate').hidden = !show;
  if (!show) return;
  const minutes = Math.max(1, Math.round((per * info.position) / 60));
  if (opensLater(info)) {
    // Before an appointment window opens, the estimate counts from the opening.
    setIfChanged(
      'wait-estimate',
      interpolate(
        ngettext(
          'Once the room opens, estimated wait: about %(count)s minute (from how long the host took to let recent guests in).',
          'Once the room opens, estimated wait: about %(count)s minutes (from how long the host took to let recent guests in).',
          minutes,
        ),
        { count: minutes },
      ),
    );
    return;
  }
  setIfChanged(
    'wait-estimate',
    interpolate(
      ngettext(
        'Estimated wait: about %(count)s minute (from how long the host took to let recent guests in).',
        'Estimated wait: about %(count)s minutes (from how long the host took to let recent guests in).',
        minutes,
      ),
      { count: minutes },
    ),
  );
}

function renderHostWords(info) {
  renderEstimate(info);
  const all = info.message || '';
  const mine = info.hostMessage || '';
  $('lobby-message').hidden = !all;
  setText('lobby-message', all ? interpolate(gettext('Message from the host to everyone waiting: %(text)s'), { text: all }) : '');
  $('host-message').hidden = !mine;
  setText('host-message', mine ? interpolate(gettext('Message from the host to you: %(text)s'), { text: mine }) : '');
}

// Early for an appointment window (`room-opens`): the room opens at a time the guest is told,
// and nothing else about the room. Once that time passes on this clock, the usual words return.
let lastWaiting = null;
let statusPrefix = '';

function opensLater(info) {
  const at = info?.opensAt;
  return at && at.getTime() > Date.now() ? at : null;
}

function clockTime(date) {
  return date.toLocaleTimeString(LANG, { hour: '2-digit', minute: '2-digit' });
}

function untilWords(ms) {
  const minutes = Math.ceil(ms / 60000);
  if (minutes <= 1) return gettext('in less than a minute');
  return interpolate(ngettext('in about %(count)s minute', 'in about %(count)s minutes', minutes), {
    count: minutes,
  });
}

function setIfChanged(id, text) {
  // Live regions re-announce every write: only write what changed.
  if ($(id).textContent !== text) $(id).textContent = text;
}

function renderWaiting(info) {
  lastWaiting = info;
  const early = opensLater(info);
  html.dataset.early = early ? '1' : '';
  setIfChanged(
    'waiting-title',
    early ? gettext('Waiting for the room to open') : gettext('Waiting for the host to let you in'),
  );
  const text = waitingText(info);
  setIfChanged('waiting-status', statusPrefix ? `${statusPrefix} ${text}` : text);
}

function earlyText(info, opens) {
  const time = clockTime(opens);
  const when = untilWords(opens.getTime() - Date.now());
  if (info.position && info.waiting > 1) {
    return interpolate(
      ngettext(
        'The room opens at %(time)s (%(when)s); you are number %(position)s in line (%(count)s person waiting).',
        'The room opens at %(time)s (%(when)s); you are number %(position)s in line (%(count)s people waiting).',
        info.waiting,
      ),
      { time, when, position: info.position, count: info.waiting },
    );
  }
  return interpolate(gettext('The room opens at %(time)s (%(when)s); you are in line.'), { time, when });
}

function waitingText(info) {
  if (info.status === 'reconnecting') {
    return gettext('Connection lost — reconnecting. Your place in line is kept.');
  }
  const opens = opensLater(info);
  if (opens) return earlyText(info, opens);
  if (!info.position) return gettext('Knocking… the host has been told you are here.');
  if (info.position === 1) {
    return info.waiting > 1
      ? interpolate(
          ngettext(
            "You're next in line (%(count)s person waiting). The host has been told.",
            "You're next in line (%(count)s people waiting). The host has been told.",
            info.waiting,
          ),
          { count: info.waiting },
        )
      : gettext("You're next in line. The host has been told you're here.");
  }
  return interpolate(
    ngettext(
      "You're number %(position)s in line (%(count)s person waiting).",
      "You're number %(position)s in line (%(count)s people waiting).",
      info.waiting,
    ),
    { position: info.position, count: info.waiting },
  );
}

function startCountdown() {
  stopCountdown();
  const tick = () => {
    if (!expiresAt) return;
    const left = Math.max(0, Math.ceil((expiresAt.getTime() - Date.now()) / 1000));
    setText('time-left', mmss(left));
    $('time-left').classList.toggle('low', left <= 10);
    if (left === 0) setText('waiting-status', gettext("Time's up — checking with the host's side…"));
    else if (lastWaiting && (html.dataset.early || opensLater(lastWaiting))) {
      // Counting down to an appointment window's opening, then the usual words once it opens.
      renderWaiting(lastWaiting);
      renderEstimate(lastWaiting);
    }
  };
  tick();
  countdown = setInterval(tick, 250);
}

function stopCountdown() {
  if (countdown) clearInterval(countdown);
  countdown = null;
}

$('cancel-button').addEventListener('click', () => {
  $('cancel-button').disabled = true;
  setText('waiting-status', gettext('Canceling…'));
  if (controller) {
    controller.abort();
  } else if (room) {
    // Knocking again after a lapsed presence: leaving withdraws that knock.
    const r = room;
    room = null;
    stopCountdown();
    Promise.resolve(r.leave()).finally(() => outcome('CANCELED'));
  }
});

// In the room -----------------------------------------------------------------------------------

function inRoom(r, tok, name) {
  room = r;
  controller = null;
  stopCountdown();
  remember(r.resumeKey, tok, name);
  window.dispatchEvent(new CustomEvent('anteroom:joined', { detail: { room: r } })); // the call
  renderPeople();
  renderBanners();
  r.on('participant-joined', renderPeople)
    .on('participant-updated', renderPeople)
    .on('participant-left', renderPeople)
    .on('room-updated', renderBanners)
    .on('reconnecting', () => connBanner(gettext('Connection lost — reconnecting…')))
    .on('reconnected', () => {
      connBanner(null);
      stopCountdown();
      breakoutEnds = null; // the fresh snapshot has the current end
      renderPeople();
      renderBanners();
      if (html.dataset.state !== 'room') show('room', 'room-title');
    })
    .on('waiting', (info) => {
      // Sent back by the host, or away longer than the grace period (the presence lapsed and
      // the client knocked again).
      connBanner(null);
      expiresAt = info.expiresAt;
      const why =
        info.reason === 'sent-to-lobby'
          ? gettext('The host moved you back to the waiting room.')
          : gettext('You were away for a while, so you knocked again.');
      statusPrefix = why;
      renderWaiting(info);
      waitingRoom = room;
      prepareRename(room?.self?.name || '');
      renderHostWords(info);
      html.dataset.position = info.position ?? '';
      $('cancel-button').disabled = false;
      if (html.dataset.state !== 'waiting') show('waiting', 'waiting-title');
      startCountdown();
    })
    .on('breakout-participant-joined', renderBreakoutPeople)
    .on('breakout-participant-left', renderBreakoutPeople)
    .on('breakout-help-resolved', (f) => {
      // Only this guest's own request reaches it: say what became of it, in its room.
      const where = roomWords(f.room_id);
      if (f.outcome === 'answered') {
        breakoutNote(interpolate(gettext('The host answered your request for help in %(room)s.'), { room: where }));
      } else if (f.outcome === 'expired') {
        breakoutNote(
          interpolate(gettext('Nobody answered your request for help in %(room)s in time; you can ask again.'), {
            room: where,
          }),
        );
      }
    })
    .on('breakout-invitation', (f) => {
      const br = f.room || {};
      setText('breakout-invite-text', interpolate(gettext("You're invited to breakout room %(number)s."), { number: br.number ?? '' }));
      $('breakout-invite').dataset.roomId = br.id || '';
      $('breakout-invite').hidden = false;
    })
    .on('breakout-joined', (f) => {
      $('breakout-invite').hidden = true;
      $('breakout-warning').hidden = true;
      breakoutEnds = null;
      // A move between breakout rooms arrives as breakout-left (moved), then breakout-joined.
      breakoutNote(
        movedOut
          ? interpolate(gettext('The host moved you to breakout room %(number)s.'), { number: f.room?.number ?? '' })
          : null,
      );
      movedOut = false;
      $('breakout-message').hidden = true; // a message to the room one was in is over
      renderBanners();
    })
    .on('breakout-left', (f) => {
      $('breakout-warning').hidden = true;
      breakoutEnds = null;
      movedOut = f.reason === 'moved';
      // Which room: the page still shows the one just left (renderBanners updates it below).
      const was = html.dataset.breakout
        ? interpolate(gettext('breakout room %(number)s'), { number: html.dataset.breakout })
        : gettext('the breakout room');
      breakoutNote(interpolate(leftNotes()[f.reason] || leftNotes().left, { room: was }));
      renderBanners();
    })
    .on('breakout-message', (f) => {
      const at = new Date().toLocaleTimeString(LANG, { hour: '2-digit', minute: '2-digit' });
      $('breakout-message').textContent = interpolate(
        gettext('Message from the host to every breakout room (%(time)s): %(text)s'),
        { time: at, text: f.text },
      );
      $('breakout-message').hidden = false;
    })
    .on('breakout-ending', (f) => {
      if (!room?.breakout || f.room_id !== room.breakout.id) return;
      breakoutEnds = { roomId: f.room_id, iso: f.ends_at };
      const at = new Date(Date.parse(f.ends_at) + clockOffset).toLocaleTimeString(LANG);
      $('breakout-warning').textContent = interpolate(
        gettext('Less than a minute left: %(room)s ends at %(time)s and everyone returns to the main room.'),
        { room: roomWords(f.room_id), time: at },
      );
      $('breakout-warning').hidden = false;
      renderBreakoutTimer();
    })
    .on('breakout-extended', (f) => {
      if (!room?.breakout || f.room_id !== room.breakout.id) return;
      breakoutEnds = { roomId: f.room_id, iso: f.ends_at };
      if (breakoutSecondsLeft() > 60) $('breakout-warning').hidden = true;
      breakoutNote(interpolate(gettext('The host gave %(room)s more time.'), { room: roomWords(f.room_id) }));
      renderBreakoutTimer();
    })
    .on('closed', (detail) => {
      room = null;
      connBanner(null);
      outcome(detail.code, detail.error && detail.error.message);
    });
  show('room', 'room-title');
}

function renderPeople() {
  if (!room) return;
  const list = $('participant-list');
  const people = room.participants;
  list.replaceChildren(
    ...people.map((p) => {
      const li = document.createElement('li');
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = p.name || gettext('Guest');
      li.append(avatar(name.textContent), name);
      if (room.self && p.participant_id === room.self.participant_id) li.append(' ', gettext('(you)'));
      if (p.role === 'moderator') li.append(' ', tag(gettext('host')));
      if (p.status === 'paused') li.append(' ', tag(gettext('in a breakout')));
      return li;
    }),
  );
  setText('participant-count', String(people.length));
}

function tag(text) {
  return el('span', { class: 'tag', text });
}

function renderBanners() {
  if (!room) return;
  const info = room.info || {};
  const lines = [];
  if (info.paused) lines.push(gettext('The host has paused the room. Hold on — it will resume shortly.'));
  if (info.audio_muted) lines.push(gettext("The host has muted everyone's microphone."));
  if (info.video_muted) lines.push(gettext("The host has turned everyone's camera off."));
  const br = room.breakout;
  if (br) lines.push(interpolate(gettext('You are in breakout room %(number)s.'), { number: br.number ?? '' }));
  $('breakout-actions').hidden = !br;
  if (!br) {
    $('breakout-message').hidden = true;
    $('breakout-warning').hidden = true;
  }
  if (!br) breakoutEnds = null;
  else if (!breakoutEnds || breakoutEnds.roomId !== br.id) {
    breakoutEnds = { roomId: br.id, iso: br.ends_at || null };
  }
  renderBreakoutTimer();
  renderBreakoutPeople();
  html.dataset.breakout = br ? String(br.number ?? '') : '';
  $('room-banners').replaceChildren(
    ...lines.map((text) => {
      const p = document.createElement('p');
      p.className = 'banner';
      p.textContent = text;
      return p;
    }),
  );
  html.dataset.paused = info.paused ? '1' : '0';
}

// What a return to the main room says; %(room)s is the room left ("breakout room 2").
function leftNotes() {
  return {
    left: gettext("You left %(room)s: you're back in the main room."),
    cleared: gettext('The host brought everyone back: you left %(room)s for the main room.'),
    destroyed: gettext("The host closed the breakout rooms. You're back in the main room from %(room)s."),
    moved: gettext('The host moved you from %(room)s back to the main room.'),
    timer: gettext("Time's up: %(room)s has ended and you're back in the main room."),
  };
}

function roomWords(roomId) {
  const br = room?.breakout;
  return br && br.id === roomId && br.number != null
    ? interpolate(gettext('breakout room %(number)s'), { number: br.number })
    : gettext('your breakout room');
}

// One current breakout note (what just happened), not a pile: each replaces the last, and it
// goes after a while, so an old one never reads as the state of now. The host's message stays
// while one is in the room it was sent to; the banners above say where one is.
const NOTE_MS = 12000;
let noteTimer = null;

function breakoutNote(text) {
  $('breakout-note').textContent = text || '';
  $('breakout-note').hidden = !text;
  clearTimeout(noteTimer);
  if (text) noteTimer = setTimeout(() => ($('breakout-note').hidden = true), NOTE_MS);
}

// Who is in this guest's own breakout room (only that one: others' members are not its business).
function renderBreakoutPeople() {
  const br = room?.breakout;
  const members = br?.members || [];
  $('breakout-people').hidden = !br;
  if (!br) {
    $('breakout-member-list').replaceChildren();
    return;
  }
  setText('breakout-people-number', String(br.number ?? ''));
  setText('breakout-people-count', String(members.length));
  $('breakout-member-list').replaceChildren(
    ...members.map((m) => {
      const li = document.createElement('li');
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = m.name || gettext('Guest');
      li.append(avatar(name.textContent), name);
      if (room.self && m.participant_id === room.self.participant_id) li.append(' ', gettext('(you)'));
      if (m.role === 'moderator') li.append(' ', tag(gettext('host')));
      return li;
    }),
  );
}

function breakoutSecondsLeft() {
  if (!breakoutEnds?.iso) return null;
  return Math.max(0, Math.ceil((Date.parse(breakoutEnds.iso) + clockOffset - Date.now()) / 1000));
}

function renderBreakoutTimer() {
  const left = breakoutSecondsLeft();
  $('breakout-timer').hidden = left === null;
  if (left === null) {
    clearInterval(breakoutTick);
    breakoutTick = null;
    return;
  }
  setText('breakout-time-left', mmss(left));
  $('breakout-time-left').classList.toggle('low', left <= 60);
  if (!breakoutTick) breakoutTick = setInterval(renderBreakoutTimer, 500);
}

function connBanner(text) {
  $('conn-banner').hidden = !text;
  $('conn-banner').textContent = text || '';
}

$('leave-button').addEventListener('click', async () => {
  const r = room;
  room = null;
  if (r) await r.leave();
  outcome('LEFT');
});

$('breakout-accept').addEventListener('click', async () => {
  $('breakout-invite').hidden = true;
  try {
    await room?.joinBreakout($('breakout-invite').dataset.roomId);
  } catch (err) {
    connBanner(errorText(err));
  }
});

$('breakout-leave').addEventListener('click', async () => {
  try {
    await room?.leaveBreakout();
  } catch (err) {
    connBanner(errorText(err));
  }
});

$('breakout-help').addEventListener('click', async () => {
  try {
    const d = await room?.requestBreakoutHelp();
    breakoutNote(
      interpolate(gettext('The host has been asked to join you in %(room)s.'), { room: roomWords(d?.room_id) }),
    );
  } catch (err) {
    if (err.code === 'HELP_ALREADY_REQUESTED') {
      // One pending request at a time: the host already has it.
      breakoutNote(
        interpolate(gettext('You have already asked for help in %(room)s; a moderator has been told.'), {
          room: roomWords(room?.breakout?.id),
        }),
      );
    } else {
      connBanner(errorText(err));
    }
  }
});

$('breakout-decline').addEventListener('click', async () => {
  $('breakout-invite').hidden = true;
  try {
    await room?.rejectBreakout($('breakout-invite').dataset.roomId);
  } catch {
    // the invitation lapses on its own
  }
});

function stored(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null; // storage may be unavailable (private modes, embedded views)
  }
}

function store(key, value) {
  try {
    sessionStorage.setItem(key, value);
  } catch {
    // not kept: only a convenience
  }
}

// Surviving a reload: the resume key lives in this tab's sessionStorage while waiting or in.

function remember(resume, tok, name) {
  if (!resume) return;
  try {
    sessionStorage.setItem(
      STORE_KEY,
      JSON.stringify({ resume, token: tok || null, name: name || '', at: Date.now() }),
    );
  } catch {
    // storage may be unavailable (private mode); reconnects within this page still work
  }
}

function forget() {
  try {
    sessionStorage.removeItem(STORE_KEY);
  } catch {
    // nothing stored
  }
}

function recall() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null');
    if (saved && saved.resume && Date.now() - saved.at < RESUME_FOR_MS) return saved;
  } catch {
    // ignore a damaged entry
  }
  forget();
  return null;
}

// Start -----------------------------------------------------------------------------------------

async function start() {
  const saved = recall();
  if (saved) {
    // Leaving the page is not a Cancel: the server keeps the knock for its grace period, so
    // a reload picks up the same place in line.
    $('name').value = saved.name;
    setText('waiting-status', gettext('Reconnecting to your place in line…'));
    show('waiting', 'waiting-title');
    enter({ token: saved.token, name: saved.name, resume: saved.resume });
    html.dataset.ready = '1';
    return;
  }
  if (token) {
    try {
      level = (await preauth({ room: cfg.room, token })).level;
    } catch (err) {
      html.dataset.ready = '1';
      outcome(err.code || 'NETWORK_ERROR', err.message);
      return;
    }
    if (level === 'full' && tokenName) {
      // A personal, direct invitation: straight in.
      html.dataset.ready = '1';
      enter({ token, name: tokenName });
      return;
    }
  }
  if (level === 'none') {
    outcome('ACCESS_DENIED');
  } else {
    showForm(false);
  }
  html.dataset.ready = '1';
}

start();
