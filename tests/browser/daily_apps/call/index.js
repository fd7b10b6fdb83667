// A vanilla-JS Daily call page in the shape Daily's call-object docs describe (see index.html).
// Nothing in this file knows about Anteroom.
const url = new URLSearchParams(window.location.search).get('url');
const call = window.DailyIframe.createCallObject({ url });
window.call = call; // for the test's eyes only; the page itself never reads it back

const $ = (id) => document.getElementById(id);
const status = (text) => { $('status').textContent = text; };

function tileFor(participant) {
  const id = participant.local ? 'local' : participant.session_id;
  let tile = document.querySelector(`.tile[data-id="${id}"]`);
  if (!tile) {
    tile = document.createElement('div');
    tile.className = 'tile';
    tile.dataset.id = id;
    tile.dataset.video = 'off';
    tile.innerHTML = '<video autoplay playsinline muted></video><audio autoplay></audio><p class="name"></p>';
    $('tiles').append(tile);
  }
  tile.querySelector('.name').textContent = participant.user_name + (participant.local ? ' (you)' : '');
  return tile;
}

// Daily recommends persistentTrack for <video>/<audio> elements: the same track across off/on.
function attach(el, track) {
  if (!el.srcObject || el.srcObject.getTracks()[0] !== track) el.srcObject = new MediaStream([track]);
}

function screenFor(tile) {
  let v = tile.querySelector('video.screen');
  if (!v) {
    v = document.createElement('video');
    v.className = 'screen';
    v.autoplay = true;
    v.muted = true;
    tile.append(v);
  }
  return v;
}

call
  .on('joined-meeting', (e) => {
    status('Joined');
    $('controls').hidden = false;
    tileFor(e.participants.local);
    call.enumerateDevices().then(({ devices }) => {
      const select = $('cameras');
      select.innerHTML = '';
      devices.filter((d) => d.kind === 'videoinput').forEach((d) => {
        const o = document.createElement('option');
        o.value = d.deviceId;
        o.textContent = d.label || d.deviceId;
        select.append(o);
      });
    });
  })
  .on('participant-joined', (e) => tileFor(e.participant))
  .on('participant-updated', (e) => tileFor(e.participant))
  .on('participant-left', (e) => {
    const tile = document.querySelector(`.tile[data-id="${e.participant.session_id}"]`);
    if (tile) tile.remove();
  })
  .on('track-started', (e) => {
    if (!e.participant) return;
    const tile = tileFor(e.participant);
    const t = e.participant.tracks[e.type];
    const track = (t && t.persistentTrack) || e.track;
    if (e.type === 'video') {
      attach(tile.querySelector('video'), track);
      tile.dataset.video = 'on';
    } else if (e.type === 'audio' && !e.participant.local) {
      attach(tile.querySelector('audio'), track);
    } else if (e.type === 'screenVideo') {
      attach(screenFor(tile), track);
    }
  })
  .on('track-stopped', (e) => {
    if (!e.participant) return;
    const tile = tileFor(e.participant);
    if (e.type === 'video') tile.dataset.video = 'off';
    if (e.type === 'screenVideo') {
      const v = tile.querySelector('video.screen');
      if (v) v.remove();
    }
  })
  .on('participant-counts-updated', (e) => {
    $('count').textContent = `${e.participantCounts.present} in the call`;
  })
  .on('local-screen-share-started', () => { $('screen').textContent = 'Stop sharing'; })
  .on('local-screen-share-stopped', () => { $('screen').textContent = 'Share screen'; })
  .on('left-meeting', () => {
    status('Left');
    $('controls').hidden = true;
    $('tiles').innerHTML = '';
  })
  .on('error', (e) => status(`Error: ${e.errorMsg}`));

$('join').addEventListener('submit', (e) => {
  e.preventDefault();
  status('Joining');
  call.join({ userName: $('name').value });
});
$('camera').addEventListener('click', () => {
  const on = !call.localVideo();
  call.setLocalVideo(on);
  $('camera').textContent = on ? 'Camera off' : 'Camera on';
});
$('mic').addEventListener('click', () => {
  const on = !call.localAudio();
  call.setLocalAudio(on);
  $('mic').textContent = on ? 'Mute' : 'Unmute';
});
$('screen').addEventListener('click', () => {
  if (call.participants().local.screen) call.stopScreenShare();
  else call.startScreenShare();
});
$('cameras').addEventListener('change', (e) => {
  call.setInputDevicesAsync({ videoDeviceId: e.target.value });
});
$('leave').addEventListener('click', () => call.leave());
