/*
 * Anteroom's Daily-compatible facade: a classic script (no module syntax needed by the page)
 * that defines window.DailyIframe with daily-js's call-object API, so a page written against
 * daily-js runs on Anteroom by swapping its <script> tag:
 *
 *   <script crossorigin src="https://anteroom.example/static/anteroom/daily-compat.js"></script>
 *   const call = DailyIframe.createCallObject();
 *   await call.preAuth({ url: 'https://anteroom.example/r/clinic/' });
 *
 * The names, argument forms, return values (sync or Promise) and event payloads follow daily-js's
 * type definitions (index.d.ts) and reference docs; docs/client.md has the table of what is
 * covered and what is not. It uses /static/anteroom/client.js (the room) and media.js (the call)
 * underneath, loaded from next to this file.
 */
(function () {
  'use strict';

  var here = document.currentScript ? document.currentScript.src : window.location.href;
  var CLIENT_URL = new URL('client.js', here).href;
  var clientModule = null;
  function client() {
    if (!clientModule) clientModule = import(CLIENT_URL);
    return clientModule;
  }

  var counter = 0;
  var KINDS = { audio: 'audio', video: 'video', screenVideo: 'screen' };
  var EPOCH = new Date(0);

  // daily-js's DailyTrackState. `track` only when playable; `persistentTrack` whenever a track
  // exists (the same MediaStreamTrack across off/on). Local tracks are implicitly subscribed.
  function trackState(track, on, why) {
    var t = { subscribed: true, state: 'off' };
    if (why && why.blocked) {
      t.state = 'blocked';
      t.blocked = why.blocked;
    } else if (on && track) {
      t.state = 'playable';
      t.track = track;
    } else if (on) {
      t.state = 'loading';
    } else {
      t.off = why && why.off ? why.off : { byUser: true };
    }
    if (track) t.persistentTrack = track;
    return t;
  }

  function offTrack() {
    return { subscribed: true, state: 'off', off: { byUser: true } };
  }

  function roomFromUrl(url) {
    var m = url ? new URL(url, window.location.href).pathname.match(/\/r\/([A-Za-z0-9_-]{1,64})/) : null;
    return m ? m[1] : null;
  }

  function cameraErrorType(err) {
    var name = err && err.name;
    if (name === 'NotAllowedError' || name === 'SecurityError') return 'permissions';
    if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'not-found';
    if (name === 'NotReadableError') return 'cam-in-use';
    if (!navigator.mediaDevices) return 'undefined-mediadevices';
    return 'unknown';
  }

  var instances = [];

  function CallObject(options) {
    options = options || {};
    this.callClientId = String(Date.now()) + String(++counter);
    // daily-js exposes the call properties as a plain object (not a method).
    this.properties = Object.assign({}, options);
    this._handlers = {};
    this._state = 'new';
    this._access = 'unknown';
    this._awaiting = null;
    this._locked = null;
    this._room = null;
    this._abort = null;
    this._knocking = null;
    this._destroyed = false;
    this._waiting = {}; // public id -> {id, name, awaitingAccess}
    this._requestOf = {}; // public id -> Anteroom entry request id
    this._call = null;
    this._media = { audio: options.startAudioOff !== true, video: options.startVideoOff !== true };
    this._preview = { audio: null, video: null, started: null, error: null };
    this._seen = {}; // participant id -> {audio, video, screenVideo}: the playable tracks last told
    this._counts = '';
  }

  // Events ---------------------------------------------------------------------------------------

  CallObject.prototype.on = function (type, fn) {
    (this._handlers[type] = this._handlers[type] || []).push(fn);
    return this;
  };

  CallObject.prototype.once = function (type, fn) {
    var self = this;
    function wrapper(ev) {
      self.off(type, wrapper);
      fn(ev);
    }
    wrapper.listener = fn;
    return this.on(type, wrapper);
  };

  CallObject.prototype.off = function (type, fn) {
    var list = this._handlers[type];
    if (list) {
      this._handlers[type] = fn
        ? list.filter(function (f) { return f !== fn && f.listener !== fn; })
        : [];
    }
    return this;
  };

  CallObject.prototype._emit = function (type, payload) {
    var ev = Object.assign({ action: type, callClientId: this.callClientId }, payload || {});
    (this._handlers[type] || []).slice().forEach(function (fn) {
      try {
        fn(ev);
      } catch (err) {
        setTimeout(function () { throw err; });
      }
    });
  };

  CallObject.prototype._setAccess = function (level, awaiting) {
    var before = JSON.stringify([this._access, this._awaiting]);
    this._access = { level: level };
    this._awaiting = awaiting || null;
    if (JSON.stringify([this._access, this._awaiting]) !== before) {
      this._emit('access-state-updated', this.accessState());
    }
  };

  // A fatal error: daily-js's {errorMsg, error: {type, msg, details}}; the meeting state is 'error'.
  CallObject.prototype._error = function (msg, type, details) {
    this._state = 'error';
    this._emit('error', { errorMsg: msg, error: { type: type || 'ejected', msg: msg, details: details || {} } });
  };

  CallObject.prototype._nonfatal = function (type, msg, details) {
    this._emit('nonfatal-error', { type: type, errorMsg: msg, details: details });
  };

  CallObject.prototype._check = function () {
    // daily-js (strictMode, the default) refuses any use of a destroyed call object.
    if (this._destroyed) throw new Error('Use after destroy');
  };

  CallObject.prototype._merge = function (props) {
    props = props || {};
    var locked = this._locked;
    if (locked && ((props.url !== undefined && props.url !== locked.url) ||
                   (props.token !== undefined && props.token !== locked.token))) {
      // As daily-js: url and token are locked in by preAuth().
      throw new Error('url and token cannot change after preAuth()');
    }
    var self = this;
    Object.keys(props).forEach(function (k) {
      if (props[k] !== undefined) self.properties[k] = props[k];
    });
    if (props.startAudioOff !== undefined) this._media.audio = props.startAudioOff !== true;
    if (props.startVideoOff !== undefined) this._media.video = props.startVideoOff !== true;
    var room = roomFromUrl(this.properties.url);
    if (!room) throw new Error('url must be an Anteroom room URL: https://host/r/<room>/');
    return room;
  };

  // Loading --------------------------------------------------------------------------------------

  // daily-js loads its call bundle ('loading' -> 'loaded'); the facade loads client.js.
  CallObject.prototype.load = function (props) {
    var self = this;
    try {
      this._check();
      if (props && props.url !== undefined) this._merge(props);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this._loaded) return this._loaded;
    if (this._state === 'new') this._state = 'loading';
    this._emit('loading');
    this._loaded = client().then(
      function () {
        if (self._state === 'loading') self._state = 'loaded';
        self._emit('loaded');
      },
      function (err) {
        self._loaded = null;
        self._emit('load-attempt-failed', { errorMsg: String(err && err.message) });
        self._error('Failed to load the call client', 'connection-error', { on: 'load', sourceError: err });
        throw err;
      },
    );
    return this._loaded;
  };

  // Access ---------------------------------------------------------------------------------------

  CallObject.prototype.preAuth = function (props) {
    var self = this;
    try {
      this._check();
      this._merge(props);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.load()
      .then(client)
      .then(function (c) {
        return c.preauth({ url: self.properties.url, token: self.properties.token || undefined });
      })
      .then(
        function (access) {
          self._locked = { url: self.properties.url, token: self.properties.token };
          self._setAccess(access.level);
          self._emit('participant-updated', { participant: self.participants().local });
          return { access: self._access };
        },
        function (err) {
          if (err && err.code) self._error(err.message, 'connection-error', { on: 'join', code: err.code });
          throw err;
        },
      );
  };

  CallObject.prototype.accessState = function () {
    var out = { access: this._access };
    if (this._awaiting) out.awaitingAccess = this._awaiting;
    return out;
  };

  CallObject.prototype.meetingState = function () {
    return this._state;
  };

  // Local devices --------------------------------------------------------------------------------

  // Open the camera and microphone once, as daily-js does on startCamera()/join(): a lobby guest
  // has its own preview (nothing is sent before admission); the call later sends these tracks.
  CallObject.prototype._startCamera = function () {
    var self = this;
    var p = this._preview;
    if (p.started) return p.started;
    var md = navigator.mediaDevices;
    var wantVideo = this._media.video;
    function open(constraints) {
      return md.getUserMedia(constraints).then(function (s) {
        if (constraints.audio) p.audio = s.getAudioTracks()[0] || null;
        if (constraints.video) p.video = s.getVideoTracks()[0] || null;
      });
    }
    if (!md || !md.getUserMedia) {
      p.error = { type: 'undefined-mediadevices', msg: 'navigator.mediaDevices is not available' };
      p.started = Promise.resolve();
    } else {
      p.started = open({ audio: true, video: wantVideo }).catch(function (err) {
        // One device may work without the other (daily-js reports audioOk / videoOk): try each
        // kind that exists on its own.
        var has = { audioinput: false, videoinput: false };
        return md.enumerateDevices()
          .then(function (list) { list.forEach(function (d) { has[d.kind] = true; }); }, function () {})
          .then(function () { return has.audioinput ? open({ audio: true, video: false }).catch(function () {}) : null; })
          .then(function () {
            return wantVideo && has.videoinput ? open({ audio: false, video: true }).catch(function () {}) : null;
          })
          .then(function () {
            p.error = { type: cameraErrorType(err), msg: String(err && err.message), name: err && err.name };
          });
      });
    }
    return p.started.then(function () {
      if (self._destroyed) return;
      if (p.error) {
        var ok = { audioOk: !!p.audio, videoOk: !!p.video || !wantVideo };
        self._emit('camera-error', {
          errorMsg: Object.assign({ errorMsg: p.error.msg }, ok),
          error: { type: p.error.type, msg: p.error.msg },
        });
      }
      if (p.audio || p.video) self._emit('started-camera');
      self._sync();
      return self._devices();
    });
  };

  CallObject.prototype._stopPreview = function () {
    var p = this._preview;
    if (p.audio) p.audio.stop();
    if (p.video) p.video.stop();
    this._preview = { audio: null, video: null, started: null, error: null };
  };

  // What the local participant has and sends: {tracks: {audio, video, screen}, on, why}.
  CallObject.prototype._localMedia = function () {
    var c = this._call;
    var why = {};
    var p = this._preview;
    var inCall = c && !c.ended;
    var tracks = inCall ? c.local : p;
    if (p.error) {
      // The devices that could not be opened are 'blocked', with daily-js's reasons.
      var t = p.error.type;
      var blocked = t === 'permissions' ? { byPermissions: true } : t === 'cam-in-use' ? { byDeviceInUse: true } : { byDeviceMissing: true };
      if (!tracks.audio) why.audio = { blocked: blocked };
      if (!tracks.video && this._media.video) why.video = { blocked: blocked };
    }
    if (inCall) {
      var on = {};
      ['audio', 'video', 'screen'].forEach(function (k) {
        on[k] = c.sending(k);
        if (c.enabled[k] && c.local[k] && !c.permissions[k]) why[k] = { off: { byCanSendPermission: true } };
      });
      return { tracks: c.local, on: on, why: why };
    }
    return {
      tracks: { audio: p.audio, video: p.video, screen: null },
      on: { audio: this._media.audio && !!p.audio, video: this._media.video && !!p.video, screen: false },
      why: why,
    };
  };

  // Participants ---------------------------------------------------------------------------------

  CallObject.prototype._participant = function (p) {
    var room = this._room;
    var localId = room && room.self ? room.self.participant_id : null;
    var local = !p || p.participant_id === localId;
    var tracks;
    if (local) {
      var m = this._localMedia();
      tracks = {
        audio: trackState(m.tracks.audio, m.on.audio, m.why.audio),
        video: trackState(m.tracks.video, m.on.video, m.why.video),
        screenAudio: offTrack(),
        screenVideo: trackState(m.tracks.screen, m.on.screen, m.why.screen),
      };
    } else {
      var c = this._call;
      var inCall = c && !c.ended && c.peers.indexOf(p.participant_id) >= 0;
      var got = (inCall && c.remote.get(p.participant_id)) || {};
      var st = (inCall && c.states.get(p.participant_id)) || {};
      tracks = {
        audio: trackState(got.audio, !!st.audio),
        video: trackState(got.video, !!st.video),
        screenAudio: offTrack(),
        screenVideo: trackState(got.screen, !!st.screen),
      };
    }
    var id = p ? p.participant_id : 'local';
    var role = p ? p.role : 'participant';
    var playable = function (k) { return tracks[k].state === 'playable'; };
    return {
      session_id: id,
      user_id: id,
      user_name: p ? p.name || '' : this.properties.userName || '',
      local: local,
      owner: role === 'moderator',
      record: false,
      joined_at: p && p.joined_at ? new Date(p.joined_at) : undefined,
      will_eject_at: EPOCH,
      // Deprecated in daily-js, still read by many apps: true only when there is a track to play.
      audio: playable('audio'),
      video: playable('video'),
      screen: playable('screenVideo'),
      audioTrack: playable('audio') ? tracks.audio.track : false,
      videoTrack: playable('video') ? tracks.video.track : false,
      screenVideoTrack: playable('screenVideo') ? tracks.screenVideo.track : false,
      screenAudioTrack: false,
      cam_info: {},
      screen_info: {},
      tracks: tracks,
      permissions: {
        hasPresence: true,
        canSend: role !== 'viewer',
        canAdmin: role === 'moderator' ? new Set(['participants']) : false,
      },
      anteroom: p ? { role: p.role, status: p.status, breakout_id: p.breakout_id } : { role: 'participant', status: 'lobby' },
    };
  };

  CallObject.prototype.participants = function () {
    var self = this;
    var room = this._room;
    var out = {};
    if (!room || !room.self) {
      out.local = this._participant(null);
      return out;
    }
    room.participants.forEach(function (p) {
      var dp = self._participant(p);
      if (dp.local) out.local = dp;
      else out[p.participant_id] = dp;
    });
    if (!out.local) out.local = this._participant(room.self);
    return out;
  };

  CallObject.prototype.participantCounts = function () {
    var room = this._room;
    return { present: room && room.self ? room.participants.length : 0, hidden: 0 };
  };

  // Tell what changed since the last call: track-stopped / track-started when a track stops or
  // starts being playable (daily-js's rule), then participant-updated for each participant whose
  // media changed, and participant-counts-updated when the counts did.
  CallObject.prototype._sync = function () {
    var self = this;
    var now = this.participants();
    var before = this._seen;
    var seen = {};
    var changed = [];
    Object.keys(now).forEach(function (key) {
      var dp = now[key];
      var id = dp.local ? 'local' : dp.session_id;
      var was = before[id] || {};
      var is = {};
      var diff = false;
      Object.keys(KINDS).forEach(function (type) {
        var t = dp.tracks[type];
        is[type] = t.state === 'playable' ? t.track : null;
        is[type + ':state'] = t.state;
        if (was[type] && was[type] !== is[type]) {
          self._emit('track-stopped', { participant: dp, track: was[type], type: type });
        }
        if (is[type] && was[type] !== is[type]) {
          self._emit('track-started', { participant: dp, track: is[type], type: type });
          if (dp.local && type === 'screenVideo') self._emit('local-screen-share-started');
        }
        if (dp.local && type === 'screenVideo' && was[type] && !is[type]) {
          self._emit('local-screen-share-stopped');
        }
        if (was[type + ':state'] !== is[type + ':state'] || was[type] !== is[type]) diff = true;
      });
      seen[id] = is;
      if (diff && before[id]) changed.push(dp);
    });
    Object.keys(before).forEach(function (id) {
      if (seen[id]) return;
      Object.keys(KINDS).forEach(function (type) {
        if (before[id][type]) self._emit('track-stopped', { participant: null, track: before[id][type], type: type });
      });
    });
    this._seen = seen;
    changed.forEach(function (dp) { self._emit('participant-updated', { participant: dp }); });
    var counts = JSON.stringify(this.participantCounts());
    if (counts !== this._counts) {
      this._counts = counts;
      if (this._room) this._emit('participant-counts-updated', { participantCounts: this.participantCounts() });
    }
  };

  // Join, knock, leave ---------------------------------------------------------------------------

  CallObject.prototype.join = function (props) {
    var self = this;
    try {
      this._check();
      this._merge(props);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this._state === 'joined-meeting' || this._state === 'joining-meeting') {
      return Promise.reject(new Error('Already joined or joining the meeting.'));
    }
    return this.load().then(function () {
      self._state = 'joining-meeting';
      self._emit('joining-meeting');
      var level = self._access === 'unknown' ? null : self._access.level;
      var ready = level ? Promise.resolve(level) : self.preAuth().then(function (r) { return r.access.level; });
      return ready.then(function (lvl) {
        if (lvl === 'none') {
          self._error('Not allowed to join this meeting', 'not-allowed');
          throw new Error('Not allowed to join this meeting');
        }
        return self._startCamera().then(function () {
          if (lvl === 'lobby') {
            // A lobby guest "joins" without knocking; requestAccess() knocks.
            self._state = 'joined-meeting';
            var ps = self.participants();
            self._emit('joined-meeting', { participants: ps });
            return ps;
          }
          return self._enter({}).then(function () {
            // As daily-js: join() and joined-meeting carry the local participant only; the
            // others already there follow as participant-joined.
            var ps = { local: self.participants().local };
            self._emit('joined-meeting', { participants: ps });
            self._announceOthers(true);
            return ps;
          });
        });
      });
    });
  };

  // Connect (and knock when `extra` carries a signal); resolves once in the room with its call
  // started, so the first events already carry the local tracks.
  CallObject.prototype._enter = function (extra) {
    var self = this;
    return client().then(function (c) {
      var opts = Object.assign(
        {
          url: self.properties.url,
          token: self.properties.token || undefined,
          name: self.properties.userName || undefined,
        },
        extra,
      );
      return c.join(opts).then(function (room) {
        self._room = room;
        self._state = 'joined-meeting';
        self._listen(room);
        return self._startCall(room).then(function () { return room; });
      });
    }).catch(function (err) {
      if (self._state === 'joining-meeting') self._state = 'error';
      if (err && err.name !== 'AbortError' && err.code !== 'ENTRY_DENIED' && err.code !== 'ENTRY_TIMEOUT') {
        var type = err.code === 'ACCESS_DENIED' ? 'not-allowed' : err.code === 'ROOM_NOT_FOUND' ? 'no-room' :
          err.code === 'ROOM_FULL' ? 'meeting-full' : err.code === 'TOKEN_EXPIRED' ? 'exp-token' : 'connection-error';
        self._error(err.message, type, { on: 'join', code: err.code });
      }
      throw err;
    });
  };

  CallObject.prototype._waitingFrom = function (r) {
    var id = r.participantId || r.participant_id || r.id;
    this._requestOf[id] = r.id;
    this._waiting[id] = { id: id, name: r.name || '', awaitingAccess: { level: 'full' } };
    return this._waiting[id];
  };

  CallObject.prototype._listen = function (room) {
    var self = this;
    function p(x) { return self._participant(x); }
    room
      .on('participant-joined', function (d) {
        self._emit('participant-joined', { participant: p(d.participant) });
        self._sync();
      })
      .on('participant-updated', function (d) { self._emit('participant-updated', { participant: p(d.participant) }); })
      .on('participant-left', function (d) {
        self._emit('participant-left', { participant: p(d.participant) });
        self._sync();
      })
      .on('entry-requested', function (r) {
        self._emit('waiting-participant-added', { participant: self._waitingFrom(r) });
      })
      .on('entry-updated', function (r) {
        self._emit('waiting-participant-updated', { participant: self._waitingFrom(r) });
      })
      .on('entry-removed', function (d) {
        var rid = d.requestId || (d.request && d.request.id);
        Object.keys(self._requestOf).forEach(function (id) {
          if (self._requestOf[id] !== rid) return;
          var w = self._waiting[id];
          delete self._waiting[id];
          delete self._requestOf[id];
          if (w) self._emit('waiting-participant-removed', { participant: w });
        });
      })
      .on('closed', function (d) {
        if (self._state === 'left-meeting' || self._room !== room) return;
        if (d.code !== 'LEFT') self._error(d.error ? d.error.message : 'Disconnected', 'ejected', { code: d.code });
        self._left();
      });
    room.entryRequests.forEach(function (r) { self._waitingFrom(r); });
  };

  // After joined-meeting (or admission): the others already there, and the knocks waiting.
  CallObject.prototype._announceOthers = function (admitted) {
    var self = this;
    var room = this._room;
    if (!room) return;
    if (admitted) {
      var localId = room.self.participant_id;
      room.participants.forEach(function (x) {
        if (x.participant_id !== localId) self._emit('participant-joined', { participant: self._participant(x) });
      });
      self._emit('participant-updated', { participant: self._participant(room.self) });
    }
    Object.keys(this._waiting).forEach(function (id) {
      self._emit('waiting-participant-added', { participant: self._waiting[id] });
    });
    this._sync();
  };

  CallObject.prototype._startCall = function (room) {
    var self = this;
    if (!room.media || this._call) return Promise.resolve();
    var p = this._preview;
    var tracks = [p.audio, p.video].filter(Boolean);
    var opts = tracks.length
      ? { stream: new MediaStream(tracks), audio: this._media.audio, video: this._media.video }
      : { audio: false, video: false };
    return room.startCall(opts).then(
      function (call) {
        if (self._room !== room) {
          call.end();
          return;
        }
        self._call = call;
        var sync = function () { self._sync(); };
        call
          .on('track-started', sync)
          .on('track-stopped', sync)
          .on('participant-media', sync)
          .on('peers', sync)
          .on('local', sync)
          .on('error', function (e) {
            if (e && e.screen) self._nonfatal('screen-share-error', String(e.error && e.error.message), { error: e.error });
          });
      },
      function (err) {
        self._error(err.message, 'connection-error', { on: 'join', code: 'MEDIA' });
      },
    );
  };

  CallObject.prototype.setLocalAudio = function (on) {
    this._media.audio = !!on;
    if (this._call) this._call.setMicrophone(!!on);
    else this._sync();
    return this;
  };

  CallObject.prototype.setLocalVideo = function (on) {
    var self = this;
    this._media.video = !!on;
    if (this._call) this._call.setCamera(!!on);
    else if (on && !this._preview.video && this._preview.started) {
      navigator.mediaDevices.getUserMedia({ video: true }).then(function (s) {
        self._preview.video = s.getVideoTracks()[0];
        self._sync();
      }, function () {});
    } else this._sync();
    return this;
  };

  CallObject.prototype.localAudio = function () {
    return this._localMedia().on.audio;
  };

  CallObject.prototype.localVideo = function () {
    return this._localMedia().on.video;
  };

  CallObject.prototype.localScreenVideo = function () {
    return this._localMedia().on.screen;
  };

  CallObject.prototype.localScreenAudio = function () {
    return false;
  };

  CallObject.prototype.startCamera = function (props) {
    var self = this;
    try {
      this._check();
      if (props) this._merge(props);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.load().then(function () { return self._startCamera(); });
  };

  CallObject.prototype.startScreenShare = function () {
    var self = this;
    if (!this._call) {
      this._nonfatal('screen-share-error', 'Screen sharing needs a joined call');
      return;
    }
    this._call.shareScreen(true).then(function () { self._sync(); });
  };

  CallObject.prototype.stopScreenShare = function () {
    var self = this;
    if (this._call) this._call.shareScreen(false).then(function () { self._sync(); });
  };

  // Devices --------------------------------------------------------------------------------------

  CallObject.prototype.enumerateDevices = function () {
    return navigator.mediaDevices.enumerateDevices().then(function (devices) {
      return { devices: devices };
    });
  };

  // {camera, mic, speaker}: the MediaDeviceInfo of the devices in use ({} for none).
  CallObject.prototype._devices = function () {
    var tracks = this._localMedia().tracks;
    return navigator.mediaDevices.enumerateDevices().then(function (devices) {
      function info(track, kind) {
        if (!track || track.readyState === 'ended') return {};
        var id = track.getSettings().deviceId;
        return devices.filter(function (d) { return d.kind === kind && d.deviceId === id; })[0] || {};
      }
      return { camera: info(tracks.video, 'videoinput'), mic: info(tracks.audio, 'audioinput'), speaker: {} };
    });
  };

  CallObject.prototype.getInputDevices = function () {
    return this._devices();
  };

  CallObject.prototype.setInputDevicesAsync = function (devices) {
    var self = this;
    devices = devices || {};
    var audioId = devices.audioDeviceId || undefined;
    var videoId = devices.videoDeviceId || undefined;
    if (devices.audioSource || devices.videoSource) {
      return Promise.reject(new Error('audioSource / videoSource tracks are not supported; pass device ids'));
    }
    var done;
    if (this._call) {
      done = this._call.useDevices({ audioDeviceId: audioId, videoDeviceId: videoId });
    } else {
      var p = this._preview;
      var swap = function (kind, id) {
        if (!id) return Promise.resolve();
        var c = {};
        c[kind] = { deviceId: { exact: id } };
        return navigator.mediaDevices.getUserMedia(c).then(function (s) {
          var t = kind === 'audio' ? s.getAudioTracks()[0] : s.getVideoTracks()[0];
          if (p[kind]) p[kind].stop();
          p[kind] = t;
        });
      };
      done = swap('audio', audioId).then(function () { return swap('video', videoId); });
    }
    return done.then(function () {
      self._sync();
      return self._devices();
    });
  };

  // Room -----------------------------------------------------------------------------------------

  // daily-js's DailyRoomInfo once in the room; before that {roomUrlPendingJoin} (a waiting guest
  // is told nothing about the room), or null without a url.
  CallObject.prototype.room = function () {
    var room = this._room;
    if (!room || !room.info) {
      return Promise.resolve(this.properties.url ? { roomUrlPendingJoin: this.properties.url } : null);
    }
    var info = room.info;
    var config = { enable_knocking: !!info.enable_knocking };
    if (info.max_participants != null) config.max_participants = info.max_participants;
    if (info.opens_at) config.nbf = Math.floor(Date.parse(info.opens_at) / 1000);
    if (info.closes_at) config.exp = Math.floor(Date.parse(info.closes_at) / 1000);
    var self = room.self || {};
    return Promise.resolve({
      id: info.name,
      name: info.name,
      config: config,
      domainConfig: {},
      tokenConfig: { is_owner: self.role === 'moderator', user_name: self.name, user_id: self.participant_id },
    });
  };

  CallObject.prototype.getNetworkTopology = function () {
    var media = this._call && this._room && this._room.media;
    var topology = !media ? 'none' : media.mode === 'sfu' ? 'sfu' : 'peer';
    return Promise.resolve({ topology: topology });
  };

  // Knocking -------------------------------------------------------------------------------------

  CallObject.prototype.requestAccess = function (props) {
    var self = this;
    props = props || {};
    try {
      this._check();
    } catch (err) {
      return Promise.reject(err);
    }
    if (this._state !== 'joined-meeting' || !this._access || this._access.level !== 'lobby') {
      return Promise.reject(new Error('requestAccess() needs a joined meeting at access level lobby.'));
    }
    if (props.name) this.properties.userName = props.name;
    if (this._abort) {
      // A second call while waiting renames the knock (moderators see it updated).
      if (props.name && this._knocking) this._knocking.rename(props.name).catch(function () {});
      return Promise.resolve({ access: this._access, granted: false });
    }
    this._abort = new AbortController();
    this._setAccess('lobby', { level: 'full' });
    var onWaiting = function (info, room) {
      self._knocking = room;
    };
    return this._enter({ signal: this._abort.signal, onWaiting: onWaiting }).then(
      function () {
        self._abort = null;
        self._knocking = null;
        self._setAccess('full');
        self._announceOthers(true);
        return { access: self._access, granted: true };
      },
      function (err) {
        self._abort = null;
        self._knocking = null;
        if (err && (err.code === 'ENTRY_DENIED' || err.code === 'ENTRY_TIMEOUT')) {
          // As in daily-js: the answer says lobby, then an error event ejects the guest.
          self._setAccess('lobby');
          var msg = err.code === 'ENTRY_DENIED' ? 'Join request rejected' : 'Join request timed out';
          setTimeout(function () {
            self._error(msg, 'ejected', { code: err.code, message: err.message });
            self._left();
          });
          return { access: self._access, granted: false };
        }
        if (err && err.name === 'AbortError') return { access: self._access, granted: false };
        throw err;
      },
    );
  };

  CallObject.prototype.setUserName = function (name) {
    this.properties.userName = name;
    if (this._room) this._room.rename(name).catch(function () {});
    else if (this._knocking) this._knocking.rename(name).catch(function () {});
    return Promise.resolve({ userName: name });
  };

  CallObject.prototype.leave = function () {
    var self = this;
    if (this._abort) this._abort.abort();
    var room = this._room;
    this._room = null;
    if (this._call) this._call.end();
    this._call = null;
    var done = room ? room.leave() : Promise.resolve();
    return done.then(function () {
      self._left();
    });
  };

  CallObject.prototype._left = function () {
    var wasIn = this._state === 'joined-meeting' || this._state === 'error' || this._state === 'joining-meeting';
    if (this._state !== 'error') this._state = 'left-meeting';
    if (this._call) this._call.end();
    this._call = null;
    this._room = null;
    this._waiting = {};
    this._requestOf = {};
    this._awaiting = null;
    this._locked = null;
    this._stopPreview();
    this._seen = {};
    this._counts = '';
    if (wasIn) this._emit('left-meeting');
  };

  CallObject.prototype.destroy = function () {
    var self = this;
    if (this._destroyed) return Promise.resolve();
    return this.leave().then(function () {
      self._destroyed = true;
      self._emit('call-instance-destroyed');
      self._handlers = {};
    });
  };

  CallObject.prototype.isDestroyed = function () {
    return this._destroyed;
  };

  // Moderation -----------------------------------------------------------------------------------

  CallObject.prototype.waitingParticipants = function () {
    return Object.assign({}, this._waiting);
  };

  CallObject.prototype.updateWaitingParticipant = function (id, updates) {
    var room = this._room;
    if (!room || !this._waiting[id]) {
      return Promise.reject(new Error('Unknown waiting participant: ' + id));
    }
    var grant = updates && updates.grantRequestedAccess;
    if (grant === undefined) return Promise.resolve({ id: id });
    var rid = this._requestOf[id];
    return (grant ? room.admit(rid) : room.deny(rid)).then(function () {
      return { id: id };
    });
  };

  CallObject.prototype.updateWaitingParticipants = function (updates) {
    var self = this;
    updates = updates || {};
    var jobs = [];
    var touched = [];
    Object.keys(this._waiting).forEach(function (id) {
      var u = updates[id] || updates['*'];
      if (u && u.grantRequestedAccess !== undefined) {
        touched.push(id);
        jobs.push(self.updateWaitingParticipant(id, u));
      }
    });
    return Promise.all(jobs).then(function () {
      return { ids: touched };
    });
  };

  // updateParticipant(id, {setAudio, setVideo, setScreenShare: false, eject: true}): the local
  // participant's own media, and (moderators) ejecting someone (Anteroom's participant-remove).
  // Anteroom has no per-participant remote mute; those updates are refused with a warning.
  CallObject.prototype.updateParticipant = function (id, updates) {
    var self = this;
    this._check();
    updates = updates || {};
    var room = this._room;
    var localId = room && room.self ? room.self.participant_id : null;
    if (id === 'local' || id === localId) {
      if (updates.setAudio !== undefined) this.setLocalAudio(updates.setAudio);
      if (updates.setVideo !== undefined) this.setLocalVideo(updates.setVideo);
      if (updates.setScreenShare === false) this.stopScreenShare();
      return this;
    }
    if (updates.eject === true) {
      if (!room) {
        this._nonfatal('participant-update-error', 'Not in a meeting');
      } else {
        room.request('participant-remove', { participant_id: String(id) }).catch(function (err) {
          self._nonfatal('participant-update-error', err.message, { code: err.code, id: id });
        });
      }
    }
    var unsupported = ['setAudio', 'setVideo', 'setScreenShare', 'updatePermissions', 'setSubscribedTracks', 'styles']
      .filter(function (k) { return updates[k] !== undefined; });
    if (unsupported.length) {
      console.warn('Anteroom daily-compat: updateParticipant ' + unsupported.join(', ') + ' for another participant is not supported');
    }
    return this;
  };

  CallObject.prototype.updateParticipants = function (updates) {
    var self = this;
    updates = updates || {};
    var ids = Object.keys(this.participants()).filter(function (k) { return k !== 'local'; });
    Object.keys(updates).forEach(function (id) {
      if (id !== '*') self.updateParticipant(id, updates[id]);
    });
    if (updates['*']) {
      ids.forEach(function (id) {
        if (!updates[id]) self.updateParticipant(id, updates['*']);
      });
    }
    return this;
  };

  // The factory ----------------------------------------------------------------------------------

  function live() {
    return instances.filter(function (c) { return !c.isDestroyed(); });
  }

  var DailyIframe = {
    createCallObject: function (options) {
      options = options || {};
      if (live().length && !options.allowMultipleCallInstances && options.strictMode !== false) {
        // As daily-js: one call object at a time unless the page opts in.
        throw new Error('Duplicate DailyIframe instances are not allowed');
      }
      var call = new CallObject(options);
      instances.push(call);
      return call;
    },
    getCallInstance: function (callClientId) {
      var all = live();
      if (callClientId) return all.filter(function (c) { return c.callClientId === callClientId; })[0];
      return all[0];
    },
    version: function () {
      return 'anteroom-compat-2';
    },
    supportedBrowser: function () {
      var md = navigator.mediaDevices;
      var ua = navigator.userAgent;
      var m = ua.match(/(Firefox|Edg|Chrome|Safari)\/(\d+[\d.]*)/);
      return {
        supported: typeof WebSocket === 'function' && typeof RTCPeerConnection === 'function',
        mobile: /Mobi/.test(ua),
        name: m ? { Edg: 'Microsoft Edge' }[m[1]] || m[1] : '',
        version: m ? m[2] : '',
        supportsFullscreen: !!document.fullscreenEnabled,
        supportsScreenShare: !!(md && md.getDisplayMedia),
        supportsSfu: true,
        supportsVideoProcessing: false,
        supportsAudioProcessing: false,
      };
    },
  };
  window.DailyIframe = DailyIframe;
  if (!window.Daily) window.Daily = DailyIframe;
})();
