/*
 * Anteroom's Daily-compatible facade: a classic script (no module syntax needed by the page)
 * that defines window.DailyIframe.createCallObject() with daily-js's call-object knocking API,
 * so a lobby page written against daily-js runs on Anteroom by swapping its <script> tag:
 *
 *   <script src="https://anteroom.example/static/anteroom/daily-compat.js"></script>
 *   const call = DailyIframe.createCallObject();
 *   await call.preAuth({ url: 'https://anteroom.example/r/clinic/' });
 *
 * Covered (docs/client.md has the full table): preAuth, accessState, join (a lobby guest
 * "joins" without knocking), requestAccess, waitingParticipants, updateWaitingParticipant(s),
 * participants, setUserName, meetingState, leave, destroy, isDestroyed, on/off/once, and the
 * events joined-meeting, left-meeting, participant-joined/updated/left,
 * waiting-participant-added/updated/removed, access-state-updated, error. Media (media.js):
 * once in the room the call starts (startAudioOff / startVideoOff as in daily-js);
 * participants()[id].tracks.audio/video/screenVideo carry {state, subscribed, persistentTrack,
 * track}, with setLocalAudio/setLocalVideo/localAudio/localVideo and the events track-started,
 * track-stopped. It uses /static/anteroom/client.js underneath.
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
  var NO_TRACK = { state: 'off', subscribed: false };

  // daily-js's track shape: state 'playable' (sent and received), 'off' (turned off or not
  // allowed), 'loading' (allowed and on, no media yet); persistentTrack stays across off/on.
  function dailyTrack(track, on, local) {
    if (!track) return on ? { state: 'loading', subscribed: !local } : NO_TRACK;
    var t = { state: on ? 'playable' : 'off', subscribed: !local, persistentTrack: track };
    if (on) t.track = track;
    else t.off = { byUser: true };
    return t;
  }

  // The media of one participant from the Call: {tracks: {audio, video, screen}, on: {...}}.
  function mediaOf(call, id, local) {
    if (!call || call.ended) return null;
    if (local) {
      return {
        tracks: call.local,
        on: { audio: call.sending('audio'), video: call.sending('video'), screen: call.sending('screen') },
      };
    }
    if (call.peers.indexOf(id) < 0) return null;
    var tracks = call.remote.get(id) || {};
    var st = call.states.get(id) || {};
    return { tracks: tracks, on: { audio: !!st.audio, video: !!st.video, screen: !!st.screen } };
  }

  function dailyParticipant(p, localId, call) {
    var local = p.participant_id === localId;
    var m = mediaOf(call, p.participant_id, local);
    var tracks = m
      ? {
          audio: dailyTrack(m.tracks.audio, m.on.audio, local),
          video: dailyTrack(m.tracks.video, m.on.video, local),
          screenAudio: NO_TRACK,
          screenVideo: dailyTrack(m.tracks.screen, m.on.screen, local),
        }
      : null;
    return {
      session_id: p.participant_id,
      user_id: p.participant_id,
      user_name: p.name || '',
      local: local,
      owner: p.role === 'moderator',
      joined_at: p.joined_at ? new Date(p.joined_at) : undefined,
      audio: !!(m && m.on.audio),
      video: !!(m && m.on.video),
      screen: !!(m && m.on.screen),
      tracks: tracks || {
        audio: NO_TRACK,
        video: NO_TRACK,
        screenAudio: NO_TRACK,
        screenVideo: NO_TRACK,
      },
      permissions: {
        hasPresence: p.role !== 'viewer',
        canSend: p.role !== 'viewer',
        canAdmin: p.role === 'moderator' ? ['participants'] : false,
      },
      anteroom: { role: p.role, status: p.status, breakout_id: p.breakout_id },
    };
  }

  function waitingParticipant(r) {
    return { id: r.id, name: r.name || '', awaitingAccess: { level: 'full' } };
  }

  function roomFromUrl(url) {
    var m = url ? new URL(url, window.location.href).pathname.match(/\/r\/([A-Za-z0-9_-]{1,64})/) : null;
    return m ? m[1] : null;
  }

  function CallObject(options) {
    options = options || {};
    this.callClientId = String(Date.now()) + String(++counter);
    this._handlers = {};
    this._props = { url: options.url, token: options.token, userName: options.userName };
    this._state = 'new';
    this._access = 'unknown';
    this._awaiting = null;
    this._room = null;
    this._abort = null;
    this._destroyed = false;
    this._waiting = {};
    this._call = null;
    this._media = {
      audio: options.startAudioOff !== true,
      video: options.startVideoOff !== true,
    };
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
    return this.on(type, wrapper);
  };

  CallObject.prototype.off = function (type, fn) {
    var list = this._handlers[type];
    if (list) {
      this._handlers[type] = fn ? list.filter(function (f) { return f !== fn; }) : [];
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

  CallObject.prototype._error = function (msg, type, details) {
    this._state = 'error';
    this._emit('error', { errorMsg: msg, error: { type: type || 'ejected', msg: msg, details: details } });
  };

  CallObject.prototype._check = function () {
    if (this._destroyed) throw new Error('Use after destroy');
  };

  CallObject.prototype._merge = function (props) {
    props = props || {};
    if (props.url !== undefined) this._props.url = props.url;
    if (props.token !== undefined) this._props.token = props.token;
    if (props.userName !== undefined) this._props.userName = props.userName;
    var room = roomFromUrl(this._props.url);
    if (!room) throw new Error('url must be an Anteroom room URL: https://host/r/<room>/');
    return room;
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
    return client()
      .then(function (c) {
        return c.preauth({ url: self._props.url, token: self._props.token || undefined });
      })
      .then(
        function (access) {
          self._setAccess(access.level);
          return { access: self._access };
        },
        function (err) {
          self._error(err.message, 'connection-error', { code: err.code });
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
    this._state = 'joining-meeting';
    this._emit('joining-meeting');
    var level = this._access === 'unknown' ? null : this._access.level;
    var ready = level ? Promise.resolve(level) : this.preAuth().then(function (r) { return r.access.level; });
    return ready.then(function (lvl) {
      if (lvl === 'none') {
        self._error('Not allowed to join this meeting', 'not-allowed');
        throw new Error('Not allowed to join this meeting');
      }
      if (lvl === 'lobby') {
        // A lobby guest "joins" without knocking; requestAccess() knocks.
        self._state = 'joined-meeting';
        self._emit('joined-meeting', { participants: self.participants() });
        return self.participants();
      }
      return self._enter({}).then(function () {
        return self.participants();
      });
    });
  };

  CallObject.prototype._enter = function (extra) {
    var self = this;
    return client().then(function (c) {
      var opts = Object.assign(
        {
          url: self._props.url,
          token: self._props.token || undefined,
          name: self._props.userName || undefined,
        },
        extra,
      );
      return c.join(opts).then(function (room) {
        self._attach(room);
        return room;
      });
    }).catch(function (err) {
      if (self._state === 'joining-meeting') self._state = 'error';
      if (err && err.name !== 'AbortError' && err.code !== 'ENTRY_DENIED' && err.code !== 'ENTRY_TIMEOUT') {
        self._error(err.message, err.code === 'ACCESS_DENIED' ? 'not-allowed' : 'connection-error', { code: err.code });
      }
      throw err;
    });
  };

  CallObject.prototype._attach = function (room) {
    var self = this;
    var wasLobby = this._state === 'joined-meeting';
    this._room = room;
    this._state = 'joined-meeting';
    this._setAccess('full');
    var localId = room.self && room.self.participant_id;
    function p(x) { return dailyParticipant(x, localId, self._call); }
    room
      .on('participant-joined', function (d) { self._emit('participant-joined', { participant: p(d.participant) }); })
      .on('participant-updated', function (d) { self._emit('participant-updated', { participant: p(d.participant) }); })
      .on('participant-left', function (d) { self._emit('participant-left', { participant: p(d.participant) }); })
      .on('entry-requested', function (r) {
        self._waiting[r.id] = waitingParticipant(r);
        self._emit('waiting-participant-added', { participant: self._waiting[r.id] });
      })
      .on('entry-updated', function (r) {
        self._waiting[r.id] = waitingParticipant(r);
        self._emit('waiting-participant-updated', { participant: self._waiting[r.id] });
      })
      .on('entry-removed', function (d) {
        var id = d.requestId || (d.request && d.request.id);
        var w = self._waiting[id];
        if (!w) return;
        delete self._waiting[id];
        self._emit('waiting-participant-removed', { participant: w });
      })
      .on('closed', function (d) {
        if (self._state === 'left-meeting') return;
        if (d.code !== 'LEFT') self._error(d.error ? d.error.message : 'Disconnected', 'ejected', { code: d.code });
        self._left();
      });
    room.entryRequests.forEach(function (r) { self._waiting[r.id] = waitingParticipant(r); });
    if (wasLobby) {
      // Admitted from the lobby: the room's other participants appear, the local one updates.
      room.participants.forEach(function (x) {
        if (x.participant_id !== localId) self._emit('participant-joined', { participant: p(x) });
      });
      self._emit('participant-updated', { participant: p(room.self) });
    } else {
      self._emit('joined-meeting', { participants: self.participants() });
    }
    Object.keys(this._waiting).forEach(function (id) {
      self._emit('waiting-participant-added', { participant: self._waiting[id] });
    });
    this._startCall(room);
  };

  // Media ------------------------------------------------------------------------------------

  var DAILY_KIND = { audio: 'audio', video: 'video', screen: 'screenVideo' };

  CallObject.prototype._startCall = function (room) {
    var self = this;
    if (!room.media || this._call) return;
    room.startCall({ audio: this._media.audio, video: this._media.video }).then(
      function (call) {
        if (self._room !== room) {
          call.end();
          return;
        }
        self._call = call;
        var localId = room.self.participant_id;
        function who(id) {
          var x = id === localId ? room.self : room.participants.filter(function (q) { return q.participant_id === id; })[0];
          return dailyParticipant(x || { participant_id: id, role: 'participant' }, localId, call);
        }
        function track(type) {
          return function (e) {
            self._emit(type, { participant: who(e.participantId), track: e.track, type: DAILY_KIND[e.kind] });
            self._emit('participant-updated', { participant: who(e.participantId) });
          };
        }
        call
          .on('track-started', track('track-started'))
          .on('track-stopped', track('track-stopped'))
          .on('participant-media', function (e) {
            if (!e.silent) self._emit('participant-updated', { participant: who(e.participantId) });
          })
          .on('local', function () { self._emit('participant-updated', { participant: who(localId) }); });
        ['audio', 'video'].forEach(function (kind) {
          if (call.local[kind]) {
            self._emit('track-started', { participant: who(localId), track: call.local[kind], type: kind });
          }
        });
        self._emit('participant-updated', { participant: who(localId) });
      },
      function (err) {
        self._error(err.message, 'connection-error', { code: 'MEDIA' });
      },
    );
  };

  CallObject.prototype.setLocalAudio = function (on) {
    this._media.audio = !!on;
    if (this._call) this._call.setMicrophone(!!on);
    return this;
  };

  CallObject.prototype.setLocalVideo = function (on) {
    this._media.video = !!on;
    if (this._call) this._call.setCamera(!!on);
    return this;
  };

  CallObject.prototype.localAudio = function () {
    return this._call ? this._call.sending('audio') : false;
  };

  CallObject.prototype.localVideo = function () {
    return this._call ? this._call.sending('video') : false;
  };

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
    if (props.name) this._props.userName = props.name;
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
    this._props.userName = name;
    if (this._room) this._room.rename(name).catch(function () {});
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
    this._room = null;
    this._waiting = {};
    this._awaiting = null;
    if (wasIn) this._emit('left-meeting');
  };

  CallObject.prototype.destroy = function () {
    var self = this;
    return this.leave().then(function () {
      self._destroyed = true;
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
    return (grant ? room.admit(id) : room.deny(id)).then(function () {
      return { id: id };
    });
  };

  CallObject.prototype.updateWaitingParticipants = function (updates) {
    var self = this;
    updates = updates || {};
    var ids = Object.keys(this._waiting);
    var jobs = [];
    var touched = [];
    ids.forEach(function (id) {
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

  // Participants ---------------------------------------------------------------------------------

  CallObject.prototype.participants = function () {
    var room = this._room;
    var out = {};
    if (!room || !room.self) {
      out.local = {
        session_id: 'local',
        user_id: 'local',
        user_name: this._props.userName || '',
        local: true,
        owner: false,
        audio: false,
        video: false,
        screen: false,
        tracks: { audio: NO_TRACK, video: NO_TRACK, screenAudio: NO_TRACK, screenVideo: NO_TRACK },
      };
      return out;
    }
    var localId = room.self.participant_id;
    var call = this._call;
    room.participants.forEach(function (p) {
      var dp = dailyParticipant(p, localId, call);
      if (dp.local) out.local = dp;
      else out[p.participant_id] = dp;
    });
    if (!out.local) out.local = dailyParticipant(room.self, localId, call);
    return out;
  };

  CallObject.prototype.properties = function () {
    return Object.assign({}, this._props);
  };

  var instances = [];
  window.DailyIframe = {
    createCallObject: function (options) {
      var call = new CallObject(options);
      instances.push(call);
      return call;
    },
    getCallInstance: function () {
      return instances.filter(function (c) { return !c.isDestroyed(); })[0];
    },
    version: function () {
      return 'anteroom-compat-1';
    },
    supportedBrowser: function () {
      return { supported: typeof WebSocket === 'function', mobile: /Mobi/.test(navigator.userAgent) };
    },
  };
})();
