// @ts-check
// The call on the guest page and the dashboard (templates/lobby/_call.html): video tiles with
// names, a self view, microphone / camera / screen controls, a speaking indicator, leave.
//
// The pages only announce their room: `window.dispatchEvent(new CustomEvent('anteroom:joined',
// {detail: {room}}))`. The guest page's device check (device-check.js) leaves its stream and
// choices in `window.anteroomDevices`.
import { gettext, interpolate } from './i18n.js';
import { $, html } from './ui.js';

/**
 * @typedef {import('./client.js').Room} Room
 * @typedef {import('./media.js').Call} Call
 * @typedef {import('./media.js').Sending} Sending
 * @typedef {import('./device-check.js').DeviceCheck} DeviceCheck
 */

/** What the pages share through `window`: the device check's result, this page's call. */
const shared = /** @type {Window & {anteroomDevices?: DeviceCheck, anteroomCall?: Call}} */ (window);


// Keyed by the server's `why` (a code, never translated).
function permissionNotes() {
  return {
    paused: gettext('The host paused the room: no one hears or sees you, and you see no one, until it resumes.'),
    'mesh-full': gettext(
      'This call already has as many people on camera and microphone as a peer-to-peer call carries. You can watch and listen.',
    ),
    viewer: gettext('You are watching and listening; your camera and microphone are not shared.'),
  };
}

/** @type {Call | null} */
let call = null;
/** @type {Room | null} */
let room = null;
/** @type {AudioContext | null} */
let audioCtx = null;
/** @type {Map<string, {track: MediaStreamTrack, analyser: AnalyserNode, data: Uint8Array}>} */
const meters = new Map();
/** @type {ReturnType<typeof setInterval> | null} */
let meterTimer = null;

/** @param {string} id a participant */
function nameOf(id) {
  if (room && room.self && id === room.self.participant_id) {
    return interpolate(gettext('%(name)s (you)'), { name: room.self.name || gettext('You') });
  }
  const p = room && room.participants.find((x) => x.participant_id === id);
  return (p && p.name) || gettext('Guest');
}

/** @param {string} selector */
function tileAt(selector) {
  return /** @type {HTMLElement | null} */ (document.querySelector(selector));
}

/**
 * A participant's tile (its camera, or its screen share), made the first time.
 * @param {string} id
 * @param {'cam' | 'screen'} [kind]
 * @returns {HTMLElement}
 */
function tileFor(id, kind = 'cam') {
  const key = `${id}:${kind}`;
  let tile = tileAt(`#call-tiles [data-tile="${CSS.escape(key)}"]`);
  if (tile) return tile;
  tile = document.createElement('figure');
  tile.className = 'tile';
  tile.dataset.tile = key;
  tile.dataset.participantId = id;
  tile.dataset.kind = kind;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  if (room && id === room.self.participant_id) video.muted = true; // never hear yourself
  const cap = document.createElement('figcaption');
  const name = document.createElement('span');
  name.className = 'tile-name';
  const state = document.createElement('span');
  state.className = 'tile-state';
  cap.append(name, ' ', state);
  tile.append(video, cap);
  $('call-tiles').append(tile);
  return tile;
}

/** @param {string} id */
function renderTile(id) {
  const self = room && id === room.self.participant_id;
  const tile = tileFor(id);
  const video = /** @type {HTMLVideoElement} */ (tile.querySelector('video'));
  let audioOn;
  let videoOn;
  if (self) {
    const s = call.local.video && call.enabled.video ? new MediaStream([call.local.video]) : null;
    if (!sameStream(video.srcObject, s)) video.srcObject = s;
    audioOn = call.sending('audio');
    videoOn = call.sending('video');
  } else {
    const t = call.remote.get(id) || {};
    const tracks = [t.audio, t.video].filter(Boolean);
    if (!sameTracks(video.srcObject, tracks)) video.srcObject = tracks.length ? new MediaStream(tracks) : null;
    /** @type {Partial<Sending>} */
    const st = call.states.get(id) || {};
    audioOn = !!st.audio;
    videoOn = !!st.video;
    if (t.audio) meter(id, t.audio);
    const screenTrack = t.screen;
    const screenTile = tileAt(`#call-tiles [data-tile="${CSS.escape(`${id}:screen`)}"]`);
    if (screenTrack && st.screen) {
      const st2 = tileFor(id, 'screen');
      const v = /** @type {HTMLVideoElement} */ (st2.querySelector('video'));
      if (!sameTracks(v.srcObject, [screenTrack])) v.srcObject = new MediaStream([screenTrack]);
      v.muted = true;
      st2.querySelector('.tile-name').textContent = interpolate(gettext('%(name)s — screen'), { name: nameOf(id) });
    } else if (screenTile) screenTile.remove();
  }
  tile.classList.toggle('video-off', !videoOn);
  tile.querySelector('.tile-name').textContent = nameOf(id);
  tile.querySelector('.tile-state').textContent = audioOn ? '' : gettext('(muted)');
  tile.dataset.audio = audioOn ? 'on' : 'off';
  tile.dataset.video = videoOn ? 'on' : 'off';
}

/**
 * @param {MediaProvider | null} a what a video element shows
 * @param {MediaStream | null} b
 */
function sameStream(a, b) {
  if (!a && !b) return true;
  if (!a || !b) return false;
  return sameTracks(a, b.getTracks());
}

/**
 * @param {MediaProvider | null} stream what a video element shows (only ever a MediaStream)
 * @param {MediaStreamTrack[]} tracks
 */
function sameTracks(stream, tracks) {
  const have = stream ? /** @type {MediaStream} */ (stream).getTracks() : [];
  return have.length === tracks.length && tracks.every((t) => have.includes(t));
}

function renderAll() {
  if (!call || !room) return;
  const ids = [room.self.participant_id, ...call.peers];
  for (const tile of [.../** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('#call-tiles .tile'))]) {
    if (!ids.includes(tile.dataset.participantId)) {
      meters.delete(tile.dataset.participantId);
      tile.remove();
    }
  }
  for (const id of ids) renderTile(id);
  renderControls();
}

function renderControls() {
  const p = call.permissions;
  const mic = $('call-mic');
  const cam = $('call-cam');
  const screen = $('call-screen');
  mic.disabled = !p.audio || !call.local.audio;
  mic.setAttribute('aria-pressed', call.enabled.audio && p.audio ? 'true' : 'false');
  mic.textContent = call.enabled.audio ? gettext('Mute microphone') : gettext('Unmute microphone');
  cam.disabled = !p.video;
  cam.setAttribute('aria-pressed', call.enabled.video && p.video ? 'true' : 'false');
  cam.textContent = call.enabled.video ? gettext('Turn camera off') : gettext('Turn camera on');
  screen.hidden = !p.screen || !navigator.mediaDevices?.getDisplayMedia;
  screen.textContent = call.enabled.screen ? gettext('Stop sharing') : gettext('Share screen');
  let note = null;
  const notes = permissionNotes();
  if (!p.receive) note = notes.paused;
  else if (call.limit) note = notes[call.limit] || null;
  else if (!call.publisher && !p.audio && !p.video) note = notes.viewer;
  else if (!p.audio && !p.video) note = gettext('The host has turned off microphones and cameras.');
  else if (!p.audio) note = gettext("The host has muted everyone's microphone; you cannot unmute until they allow it.");
  else if (!p.video) note = gettext('The host has turned cameras off; you cannot turn yours on until they allow it.');
  if (call.deviceError) {
    const why = deviceMessage(call.deviceError);
    note = note ? `${note} ${why}` : why;
  }
  $('call-note').textContent = note || '';
  $('call-note').hidden = !note;
  html.dataset.call = 'on';
  html.dataset.callPermissions = ['audio', 'video', 'screen', 'receive'].filter((k) => p[k]).join(' ');
}

/** @param {any} err what getUserMedia threw (a DOMException, by its `name`) */
function deviceMessage(err) {
  if (err && (err.name === 'NotAllowedError' || err.name === 'SecurityError'))
    return gettext('Your browser is not letting this page use the camera or microphone; you can still see and hear the others.');
  if (err && err.name === 'NotFoundError') {
    return gettext('No camera or microphone was found; you can still see and hear the others.');
  }
  return gettext('The camera or microphone could not be started.');
}

/**
 * Speaking indicator: the level of each audio track, four times a second.
 * @param {string} id
 * @param {MediaStreamTrack} track
 */
function meter(id, track) {
  const known = meters.get(id);
  if (known && known.track === track) return;
  try {
    audioCtx = audioCtx || new AudioContext();
    const source = audioCtx.createMediaStreamSource(new MediaStream([track]));
    const analyser = audioCtx.createAnalyser();
    analyser.fftSize = 256;
    source.connect(analyser);
    meters.set(id, { track, analyser, data: new Uint8Array(analyser.fftSize) });
  } catch {
    return;
  }
  if (!meterTimer) meterTimer = setInterval(tickMeters, 250);
}

function tickMeters() {
  for (const [id, m] of meters) {
    m.analyser.getByteTimeDomainData(m.data);
    let sum = 0;
    for (const v of m.data) sum += (v - 128) * (v - 128);
    const level = Math.sqrt(sum / m.data.length) / 128;
    const tile = tileAt(`#call-tiles [data-tile="${CSS.escape(`${id}:cam`)}"]`);
    const on = id === room?.self?.participant_id ? call?.sending('audio') : call?.states.get(id)?.audio;
    if (tile) tile.classList.toggle('speaking', !!on && level > 0.04);
  }
}

/** @param {Room} r */
async function begin(r) {
  room = r;
  if (!room.media) return;
  // The device check's stream, when the guest ran it (else the call opens the devices itself).
  const devices = shared.anteroomDevices && shared.anteroomDevices.stream ? shared.anteroomDevices : null;
  $('call').hidden = false;
  $('call-rejoin').hidden = true;
  $('call-hangup').hidden = false;
  $('call-mic').hidden = $('call-cam').hidden = false;
  try {
    call = await room.startCall(
      devices
        ? { stream: devices.stream, audio: devices.audio, video: devices.video }
        : { audio: true, video: true },
    );
  } catch (err) {
    $('call-note').textContent = interpolate(gettext('The call could not start: %(why)s'), { why: err.message });
    $('call-note').hidden = false;
    return;
  }
  shared.anteroomCall = call;
  if (devices && devices.stream) {
    call.setMicrophone(devices.audio);
    if (!devices.video) await call.setCamera(false);
  }
  if (call.local.audio) meter(room.self.participant_id, call.local.audio);
  call
    .on('track-started', renderAll)
    .on('track-stopped', renderAll)
    .on('permissions', renderAll)
    .on('participant-media', renderAll)
    .on('local', renderAll)
    .on('ended', () => {
      html.dataset.call = 'off';
      $('call-tiles').replaceChildren();
      meters.clear();
      $('call-hangup').hidden = true;
      $('call-rejoin').hidden = !(room && room.state === 'joined');
      $('call-note').hidden = true;
    });
  room.on('participant-updated', renderAll).on('participant-joined', renderAll);
  renderAll();
}

$('call-mic').addEventListener('click', () => {
  if (call) call.setMicrophone(!call.enabled.audio);
});
$('call-cam').addEventListener('click', () => {
  if (call) call.setCamera(!call.enabled.video);
});
$('call-screen').addEventListener('click', () => {
  if (call) call.shareScreen(!call.enabled.screen);
});
$('call-hangup').addEventListener('click', () => {
  if (call) call.end();
  if (shared.anteroomDevices) shared.anteroomDevices.stream = null; // its tracks were stopped
});
$('call-rejoin').addEventListener('click', () => {
  if (room && room.state === 'joined') begin(room);
});

window.addEventListener('anteroom:joined', (ev) => {
  const r = /** @type {CustomEvent<{room?: Room}>} */ (ev).detail?.room;
  if (!r || (call && !call.ended && room === r)) return;
  if (call && !call.ended) call.end();
  if ($('call').dataset.autostart === '1') {
    begin(r);
    return;
  }
  // The dashboard: the moderator joins the call with a click (the camera is not opened before).
  room = r;
  if (!r.media) return;
  $('call').hidden = false;
  $('call-hangup').hidden = true;
  $('call-mic').hidden = $('call-cam').hidden = true;
  $('call-rejoin').hidden = false;
});
html.dataset.callReady = '1';
