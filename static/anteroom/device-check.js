// @ts-check
// The guest page's device check (templates/lobby/_devicecheck.html): camera preview,
// microphone level, camera / microphone pickers, "join without camera", and plain messages when
// the browser refuses or there is no device. Knocking never waits for it: the knock carries the
// result (`metadata.devices`), which the host sees on the waiting row. The call (media-call.js)
// reuses the stream from `window.anteroomDevices`. The summary the knock carries stays in English
// (it is data: the host's dashboard and the REST API show it as sent); this page shows it in the
// page's language.
import { gettext, interpolate } from './i18n.js';
import { $ } from './ui.js';

/** @typedef {'ok' | 'blocked' | 'none' | 'unchecked'} Check */

/**
 * What the check found, shared with the call and the knock as `window.anteroomDevices`: the
 * stream it opened (null once the call stopped its tracks), each device's result, whether the
 * call should send audio and video, and the summary the knock carries (English; `translated`:
 * in the page's language).
 * @typedef {{stream: MediaStream | null, camera: Check, microphone: Check, readonly audio: boolean,
 *            readonly video: boolean, summary(translated?: boolean): string | null}} DeviceCheck
 */

/** @type {DeviceCheck} */
const state = {
  stream: null,
  camera: 'unchecked',
  microphone: 'unchecked',
  get audio() {
    return state.microphone === 'ok';
  },
  get video() {
    return state.camera === 'ok' && !$('dc-no-camera').checked;
  },
  summary(translated = false) {
    if (state.camera === 'unchecked' && state.microphone === 'unchecked') return null;
    /** @type {Record<string, string>} */
    const shown = translated ? localWords() : {};
    const t = (/** @type {string} */ s) => shown[s] || s;
    const cam = $('dc-no-camera').checked && state.camera === 'ok' ? 'camera off' : WORDS.camera[state.camera];
    return `${t(cam)}, ${t(WORDS.microphone[state.microphone])}`;
  },
};
/** @type {{camera: Record<Check, string>, microphone: Record<Check, string>}} */
const WORDS = {
  camera: { ok: 'camera ready', blocked: 'camera blocked', none: 'no camera', unchecked: 'camera not checked' },
  microphone: { ok: 'microphone ready', blocked: 'microphone blocked', none: 'no microphone', unchecked: 'microphone not checked' },
};
/** @type {Window & {anteroomDevices?: DeviceCheck}} */ (window).anteroomDevices = state;

// The same words in the page's language (what this page shows of the summary).
function localWords() {
  return {
    'camera off': gettext('camera off'),
    'camera ready': gettext('camera ready'),
    'camera blocked': gettext('camera blocked'),
    'no camera': gettext('no camera'),
    'camera not checked': gettext('camera not checked'),
    'microphone ready': gettext('microphone ready'),
    'microphone blocked': gettext('microphone blocked'),
    'no microphone': gettext('no microphone'),
    'microphone not checked': gettext('microphone not checked'),
  };
}

/** @type {AudioContext | null} */
let meterCtx = null;
let meterFrame = 0;

/**
 * @param {string} text
 * @param {'info' | 'ok' | 'error'} [kind]
 */
function say(text, kind = 'info') {
  const el = $('dc-status');
  el.textContent = text;
  el.className = `notice notice-${kind}`;
  el.hidden = !text;
}

/**
 * One device, opened: its track and the result (`blocked` when the browser refused).
 * @param {'audio' | 'video'} kind
 * @param {string} [deviceId]
 * @returns {Promise<{track: MediaStreamTrack | null, result: Check, error?: unknown}>}
 */
async function open(kind, deviceId) {
  const constraints = deviceId ? { deviceId: { exact: deviceId } } : true;
  try {
    const s = await navigator.mediaDevices.getUserMedia({ [kind]: constraints });
    return { track: kind === 'audio' ? s.getAudioTracks()[0] : s.getVideoTracks()[0], result: 'ok' };
  } catch (err) {
    const blocked = err && (err.name === 'NotAllowedError' || err.name === 'SecurityError');
    return { track: null, result: blocked ? 'blocked' : 'none', error: err };
  }
}

/** @param {{cameraId?: string, micId?: string}} [devices] the ones picked (else the default) */
async function check({ cameraId, micId } = {}) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    state.camera = state.microphone = 'none';
    say(gettext('This browser cannot use a camera or microphone here. You can still knock.'), 'error');
    render();
    return;
  }
  say(gettext('Asking your browser for the camera and microphone…'));
  const old = state.stream;
  const [cam, mic] = await Promise.all([open('video', cameraId), open('audio', micId)]);
  if (old) for (const t of old.getTracks()) t.stop();
  state.camera = cam.result;
  state.microphone = mic.result;
  state.stream = new MediaStream([cam.track, mic.track].filter(Boolean));
  $('dc-preview').srcObject = cam.track ? state.stream : null;
  await listDevices();
  startMeter(mic.track);
  if (cam.result === 'ok' && mic.result === 'ok') say(gettext('Your camera and microphone work. Speak: the bar moves.'), 'ok');
  else if (cam.result === 'blocked' || mic.result === 'blocked')
    say(
      gettext(
        'Your browser blocked the camera or microphone for this page. You can still knock: the host will see it. To allow them, use the camera icon in the address bar, then check again.',
      ),
      'error',
    );
  else if (cam.result === 'none' && mic.result === 'none') say(gettext('No camera or microphone was found. You can still knock, and see and hear the others.'), 'error');
  else if (cam.result === 'none') say(gettext('No camera was found; your microphone works. You can join without video.'), 'info');
  else say(gettext('No microphone was found; your camera works.'), 'info');
  render();
}

async function listDevices() {
  /** @type {MediaDeviceInfo[]} */
  let devices = [];
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return;
  }
  /** @type {(select: HTMLSelectElement, kind: MediaDeviceKind, current: string | undefined) => void} */
  const fill = (select, kind, current) => {
    const list = devices.filter((d) => d.kind === kind);
    select.replaceChildren(
      ...list.map((d, i) => {
        const o = document.createElement('option');
        o.value = d.deviceId;
        o.textContent =
          d.label ||
          interpolate(kind === 'videoinput' ? gettext('Camera %(number)s') : gettext('Microphone %(number)s'), {
            number: i + 1,
          });
        o.selected = d.deviceId === current;
        return o;
      }),
    );
    select.disabled = list.length < 2;
  };
  const track = (/** @type {string} */ k) => state.stream && state.stream.getTracks().find((t) => t.kind === k);
  fill($('dc-camera'), 'videoinput', track('video')?.getSettings().deviceId);
  fill($('dc-mic'), 'audioinput', track('audio')?.getSettings().deviceId);
}

/** @param {MediaStreamTrack | null} track */
function startMeter(track) {
  cancelAnimationFrame(meterFrame);
  const bar = $('dc-level');
  if (!track) {
    bar.style.width = '0%';
    $('dc-meter').setAttribute('aria-valuenow', '0');
    return;
  }
  meterCtx = meterCtx || new AudioContext();
  const analyser = meterCtx.createAnalyser();
  analyser.fftSize = 256;
  meterCtx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const data = new Uint8Array(analyser.fftSize);
  const tick = () => {
    analyser.getByteTimeDomainData(data);
    let sum = 0;
    for (const v of data) sum += (v - 128) * (v - 128);
    const level = Math.min(100, Math.round((Math.sqrt(sum / data.length) / 128) * 300));
    bar.style.width = `${level}%`;
    $('dc-meter').setAttribute('aria-valuenow', String(level));
    meterFrame = requestAnimationFrame(tick);
  };
  tick();
}

function render() {
  const root = document.documentElement;
  root.dataset.camera = state.camera;
  root.dataset.microphone = state.microphone;
  $('dc-summary').textContent = state.summary(true) || gettext('not checked');
  $('dc-check').textContent = state.stream ? gettext('Check again') : gettext('Check camera and microphone');
}

$('dc-check').addEventListener('click', () => check());
$('dc-camera').addEventListener('change', (e) => check({ cameraId: e.target.value, micId: $('dc-mic').value }));
$('dc-mic').addEventListener('change', (e) => check({ cameraId: $('dc-camera').value, micId: e.target.value }));
$('dc-no-camera').addEventListener('change', () => {
  const video = state.stream && state.stream.getVideoTracks()[0];
  if (video) video.enabled = !$('dc-no-camera').checked;
  $('dc-preview').hidden = $('dc-no-camera').checked;
  render();
});
render();
