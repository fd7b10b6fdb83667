// @ts-check
/**
 * Anteroom browser client: one ES module, no build step, no dependencies.
 *
 *   import { join, preauth } from '/static/anteroom/client.js';
 *   const room = await join({ room: 'clinic', name: 'Pat', onWaiting: (w) => show(w) });
 *
 * `join()` resolves with a Room once the guest is in (admitted, or straight in when the access
 * level is `full`) and rejects with an `AnteroomError` whose `code` is the server's error code
 * (`ENTRY_DENIED`, `ENTRY_TIMEOUT`, `ENTRY_RATE_LIMITED`, `ACCESS_DENIED`, `INVALID_TOKEN`,
 * `TOKEN_EXPIRED`, `TOKEN_REVOKED`, `ROOM_NOT_FOUND`, ...), or with a DOMException named
 * `AbortError` when `signal` aborts (a waiting guest's knock is canceled first).
 *
 * A dropped socket is reopened with jittered exponential backoff and the server-issued resume
 * key, so a waiting guest keeps its place (the server holds the knock for its disconnect grace,
 * 15 s by default) and a participant keeps its presence. See docs/client.md.
 */

const ERROR_FOR_CLOSE = new Map([
  [4400, 'BAD_REQUEST'],
  [4401, 'INVALID_TOKEN'],
  [4403, 'ACCESS_DENIED'],
  [4404, 'ROOM_NOT_FOUND'],
  [4408, 'ENTRY_TIMEOUT'],
  [4409, 'REPLACED'],
  [4429, 'ENTRY_RATE_LIMITED'],
]);

const MESSAGES = {
  ENTRY_DENIED: 'A moderator declined your request to join.',
  ENTRY_TIMEOUT: 'Nobody answered your request in time.',
  ENTRY_RATE_LIMITED: 'Too many requests to join. Try again later.',
  ACCESS_DENIED: 'This room is private.',
  ROOM_NOT_FOUND: 'No such room.',
  INVALID_TOKEN: 'The meeting token is not valid.',
  NETWORK_ERROR: 'Could not reach the server.',
  DISCONNECTED: 'Not connected to the server; try again.',
  TIMEOUT: 'The server did not answer in time.',
  REPLACED: 'You joined from another connection.',
};

/** An error from Anteroom: `code` is stable API (SPEC §3), `message` is for people. */
export class AnteroomError extends Error {
  constructor(code, message, details = undefined) {
    super(message || MESSAGES[code] || code);
    this.name = 'AnteroomError';
    this.code = code;
    if (details !== undefined) this.details = details;
  }
}

function abortError() {
  return new DOMException('The join was aborted.', 'AbortError');
}

/**
 * The socket URL of a room. `url` may be a base (`https://host`), a room page
 * (`https://host/r/<room>/`, which also names the room) or a `ws(s)://` URL; it defaults to the
 * current page's origin.
 */
export function socketUrl(room, url) {
  const here = globalThis.location ? globalThis.location.href : undefined;
  const base = url ? new URL(url, here) : new URL(here);
  const fromPath = base.pathname.match(/\/r\/([A-Za-z0-9_-]{1,64})(?:\/|$)/);
  const name = room || (fromPath && fromPath[1]);
  if (!name || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
    throw new AnteroomError('BAD_REQUEST', 'A room name (1-64 of A-Z a-z 0-9 _ -) is required.');
  }
  const secure = base.protocol === 'https:' || base.protocol === 'wss:';
  return { room: name, url: `${secure ? 'wss' : 'ws'}://${base.host}/ws/rooms/${name}/` };
}

/**
 * Options of `createBreakouts` / `createAndInviteBreakouts`: camelCase, as every option of this
 * client. (`max_rooms` and `force_join`, the wire names, are accepted too: earlier versions
 * documented them.)
 * @typedef {{participants?: number, maxRooms?: number, duration?: number | null,
 *            audio?: boolean, video?: boolean, canvas?: boolean, share?: boolean,
 *            max_rooms?: number, force_join?: boolean, [other: string]: any}} BreakoutOptions
 */

/** camelCase option → wire field; any other key is sent under its own name. */
const BREAKOUT_WIRE = { maxRooms: 'max_rooms', forceJoin: 'force_join' };

/**
 * The wire fields of breakout-create(-and-invite) options.
 * @param {Record<string, any>} options
 * @returns {Record<string, any>}
 */
function breakoutFields(options) {
  /** @type {Record<string, any>} */
  const fields = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const wire = BREAKOUT_WIRE[/** @type {keyof typeof BREAKOUT_WIRE} */ (key)] || key;
    if (wire === key && Object.entries(BREAKOUT_WIRE).some(([c, w]) => w === key && options[c] !== undefined)) {
      continue; // both spellings given: the camelCase one wins
    }
    fields[wire] = value;
  }
  return fields;
}

/**
 * Milliseconds this browser's clock is ahead of the server's, from a server timestamp the page
 * was rendered with (the middle of the page's request is the best guess of when that was).
 * @param {string} serverNowIso
 * @returns {number}
 */
export function clockOffsetFrom(serverNowIso) {
  const nav = /** @type {PerformanceNavigationTiming | undefined} */ (
    globalThis.performance?.getEntriesByType?.('navigation')?.[0]
  );
  const at = nav ? performance.timeOrigin + (nav.requestStart + nav.responseStart) / 2 : Date.now();
  return Math.round(at - Date.parse(serverNowIso));
}

/** A small event emitter: `on`/`off` chain; a throwing listener never breaks the client. */
export class Emitter {
  #handlers = new Map();

  on(type, fn) {
    if (!this.#handlers.has(type)) this.#handlers.set(type, new Set());
    this.#handlers.get(type).add(fn);
    return this;
  }

  off(type, fn) {
    if (fn === undefined) this.#handlers.delete(type);
    else this.#handlers.get(type)?.delete(fn);
    return this;
  }

  once(type, fn) {
    const wrapper = (detail) => {
      this.off(type, wrapper);
      fn(detail);
    };
    return this.on(type, wrapper);
  }

  emit(type, detail) {
    for (const fn of [...(this.#handlers.get(type) || [])]) {
      try {
        fn(detail);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

function toDate(iso) {
  return iso ? new Date(iso) : null;
}

/** One knock, as a moderator sees it. `admit()` / `deny(reason?)` decide it. */
export class EntryRequest {
  #room;

  constructor(room, data) {
    this.#room = room;
    this.update(data);
  }

  update(data) {
    this.data = data;
    this.id = data.id;
    this.participantId = data.participant_id;
    this.name = data.name;
    this.metadata = data.metadata || {};
    this.requestedAt = toDate(data.requested_at);
    this.expiresAt = toDate(data.expires_at);
    this.status = data.status || 'pending';
    this.connected = data.connected !== false;
  }

  admit() {
    return this.#room.admit(this.id);
  }

  deny(reason) {
    return this.#room.deny(this.id, reason);
  }
}

let roomCounter = 0;

/**
 * A connection to one room. `join()` hands it out once the local participant is in; until then
 * it is private to `join()`, which reports the wait through `onWaiting`.
 *
 * Events (`room.on(type, fn)`): participant-joined / -updated / -left ({participant}),
 * entry-requested / entry-updated (EntryRequest), entry-resolved ({requestId, outcome, by,
 * request}), entry-canceled ({requestId, reason, request}), entry-removed ({request, reason}),
 * room-updated (room state), waiting (a rejoin had to knock again), reconnecting ({attempt,
 * delay}), reconnected, closed ({code, error?}), frame (every server frame), and every other
 * server frame type by name (breakout-*).
 */
export class Room extends Emitter {
  #opts;
  #ws = null;
  #rid = 0;
  #pending = new Map();
  #joinRid = null;
  #resume = null;
  #attempt = 0;
  #timer = null;
  #closing = false;
  #settled = false;
  #resolve;
  #reject;
  #lastError = null;
  #replay = null;
  #everJoined = false;
  #participants = new Map();
  #requests = new Map();
  #abortHandler = null;
  #onlineHandler = null;
  #joinSentAt = 0;
  #joinHadResume = false;

  constructor(opts) {
    super();
    const { room, url } = socketUrl(opts.room, opts.url);
    this.id = ++roomCounter;
    this.name = room;
    this.socketUrl = url;
    this.#opts = opts;
    this.#resume = opts.resume || null;
    /** 'connecting' | 'waiting' | 'joined' | 'reconnecting' | 'closed' */
    this.state = 'connecting';
    /** The room's state: {name, privacy, mode, paused, audio_muted, video_muted, ...}. */
    this.info = null;
    /** The local participant {participant_id, name, role, status, breakout_id}. */
    this.self = null;
    /** Breakout rooms as last reported ({id, name, number, capacity, members, ends_at}). */
    this.breakouts = [];
    /** Moderators: the room's latest outcomes, newest first ({kind, participant_id, name, at, by, reason}). */
    this.activity = [];
    /** The breakout room the local participant is in, if any. */
    this.breakout = null;
    /** The local participant's media: {mode, room, seq, permissions, publisher, peers, …}. */
    this.media = null;
    /** While knocking: {requestId, requestedAt, expiresAt, position, waiting, status, opensAt, …}. */
    this.waiting = null;
    /** Milliseconds the local clock is ahead of the server's (estimated). */
    this.clockOffset = opts.clockOffset || 0;
  }

  // Reads ------------------------------------------------------------------------------------

  /** Everyone present (active, or paused in a breakout), in arrival order. */
  get participants() {
    return [...this.#participants.values()];
  }

  /** Pending knocks, oldest first (moderators only; empty for others). */
  get entryRequests() {
    return [...this.#requests.values()].sort((a, b) => a.requestedAt - b.requestedAt);
  }

  get isModerator() {
    return this.self?.role === 'moderator';
  }

  #signals = new Map();

  /** Signals are kept (the last 64 per sender) until a call takes them: an offer sent before
   * this page started its call is not lost (media.js). */
  #keepSignal(f) {
    const list = this.#signals.get(f.from) || [];
    list.push(f);
    this.#signals.set(f.from, list.slice(-64));
  }

  /** The kept signals, oldest first, and forget them. */
  takeSignals() {
    const out = [...this.#signals.values()].flat();
    this.#signals.clear();
    return out;
  }

  /** Keep the newest media state (`joined.media`, then `media-state`; media.js). */
  #setMedia(m) {
    if (!this.media || typeof m.seq !== 'number' || m.seq >= (this.media.seq ?? -1)) this.media = m;
  }

  /** Start this room's call (media.js): `{audio, video, stream}`; resolves with a `Call`. */
  async startCall(options = {}) {
    const { startCall } = await import('./media.js');
    return startCall(this, options);
  }

  /** The current resume key; a page may keep it (sessionStorage) to survive a reload. */
  get resumeKey() {
    return this.#resume;
  }

  /** The server's clock, as estimated from this client's clock. */
  serverNow() {
    return new Date(Date.now() - this.clockOffset);
  }

  // Lobby moderation --------------------------------------------------------------------------

  /** Admit one knock. Resolves {request_id, outcome, effective}: a no-op once decided. */
  admit(requestId) {
    return this.request('admit', { request_id: String(requestId) });
  }

  /** Deny one knock; `reason` (optional) reaches the guest. */
  deny(requestId, reason) {
    const fields = { request_id: String(requestId) };
    if (reason) fields.reason = String(reason);
    return this.request('deny', fields);
  }

  /** Admit every pending knock. Resolves {count}. */
  admitAll() {
    return this.request('admit-all');
  }

  /** Deny every pending knock. Resolves {count}. */
  denyAll() {
    return this.request('deny-all');
  }

  // Self -----------------------------------------------------------------------------------------

  /** Change the local display name (a waiting guest's new name reaches moderators). */
  rename(name) {
    return this.request('update-name', { name: String(name) });
  }

  /** Leave the room now (no grace period). */
  async leave() {
    if (this.state === 'closed') return;
    const ws = this.#ws;
    this.#closing = true;
    clearTimeout(this.#timer);
    if (ws && ws.readyState === WebSocket.OPEN) {
      try {
        await this.request('leave', {}, { timeout: 3000, allowClosing: true });
      } catch {
        // The socket closes either way; the server then ends the presence after its grace.
      }
    }
    this.#finish({ code: 'LEFT' });
  }

  // Room controls (moderators) ----------------------------------------------------------------

  pause() {
    return this.#roomState('room-pause');
  }

  resume() {
    return this.#roomState('room-resume');
  }

  /** Mute the room's audio and/or video: `mute({audio: true})`; no argument mutes both. */
  mute(which) {
    return this.#roomState('room-mute', mediaFlags(which));
  }

  unmute(which) {
    return this.#roomState('room-unmute', mediaFlags(which));
  }

  async #roomState(type, fields) {
    const data = await this.request(type, fields);
    if (data && data.room) this.#setInfo(data.room);
    return data;
  }

  // Breakout rooms (SPEC §3; fields as the server documents them in docs/breakouts.md) ---------

  /**
   * Create breakout rooms (moderators).
   * @param {BreakoutOptions} [options]
   */
  createBreakouts(options = {}) {
    return this.request('breakout-create', breakoutFields(options));
  }

  /**
   * Create breakout rooms and spread the parent's participants over them (moderators).
   * @param {BreakoutOptions & {forceJoin?: boolean}} [options]
   */
  createAndInviteBreakouts(options = {}) {
    return this.request('breakout-create-and-invite', breakoutFields(options));
  }

  /**
   * Invite participants of the parent into one breakout room (`forceJoin`: move them now).
   * @param {{clients?: string[], roomId?: string, forceJoin?: boolean}} [options]
   */
  inviteToBreakout({ clients, roomId, forceJoin } = {}) {
    /** @type {Record<string, any>} */
    const fields = { clients, room_id: roomId };
    if (forceJoin !== undefined) fields.force_join = forceJoin;
    return this.request('breakout-invite', fields);
  }

  /**
   * @param {string} roomId
   * @param {{role?: string}} [options]
   */
  joinBreakout(roomId, { role } = {}) {
    /** @type {Record<string, any>} */
    const fields = { room_id: roomId };
    if (role) fields.role = role;
    return this.request('breakout-join', fields);
  }

  rejectBreakout(roomId) {
    return this.request('breakout-reject', { room_id: roomId });
  }

  leaveBreakout() {
    return this.request('breakout-leave');
  }

  moveToBreakout(participantId, roomId) {
    return this.request('breakout-move', { participant_id: participantId, room_id: roomId ?? null });
  }

  /**
   * Add `seconds` to the timer of one breakout room, or of every timed one without `roomId`.
   * @param {{roomId?: string, seconds?: number}} [options]
   */
  extendBreakouts({ roomId, seconds } = {}) {
    /** @type {Record<string, any>} */
    const fields = { seconds };
    if (roomId) fields.room_id = roomId;
    return this.request('breakout-extend', fields);
  }

  broadcastToBreakouts(text) {
    return this.request('breakout-broadcast', { text: String(text) });
  }

  requestBreakoutHelp() {
    return this.request('breakout-help');
  }

  /** Moderators: mark a participant's pending help request answered. */
  answerBreakoutHelp(participantId) {
    return this.request('breakout-help-answer', { participant_id: String(participantId) });
  }

  /** Moderators: answer someone's help request by joining their breakout room (one step). */
  joinBreakoutForHelp(participantId) {
    return this.request('breakout-help-join', { participant_id: String(participantId) });
  }

  clearBreakouts() {
    return this.request('breakout-clear-all');
  }

  destroyBreakouts() {
    return this.request('breakout-destroy-all');
  }

  // Requests ----------------------------------------------------------------------------------

  /**
   * Send one frame with a fresh `rid` and resolve with the ack's `data`, or reject with an
   * AnteroomError carrying the ack's error code (DISCONNECTED when there is no open socket).
   */
  request(type, fields = {}, { timeout = 10000, allowClosing = false } = {}) {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || (this.#closing && !allowClosing)) {
      return Promise.reject(new AnteroomError('DISCONNECTED'));
    }
    const rid = this.#nextRid();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(rid);
        reject(new AnteroomError('TIMEOUT'));
      }, timeout);
      this.#pending.set(rid, { resolve, reject, timer, type });
      ws.send(JSON.stringify({ ...fields, type, rid }));
    });
  }

  #nextRid() {
    this.#rid += 1;
    return `${this.id}.${this.#rid}`;
  }

  // Connection --------------------------------------------------------------------------------

  /** Start connecting; the promise settles as `join()` documents. (Used by `join()`.) */
  start() {
    const done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const signal = this.#opts.signal;
    if (signal) {
      if (signal.aborted) {
        this.#settle(null, abortError());
        this.state = 'closed';
        return done;
      }
      this.#abortHandler = () => this.#abort();
      signal.addEventListener('abort', this.#abortHandler, { once: true });
    }
    if (globalThis.addEventListener) {
      this.#onlineHandler = () => {
        if (this.state === 'reconnecting' && !this.#ws) {
          clearTimeout(this.#timer);
          this.#open();
        }
      };
      globalThis.addEventListener('online', this.#onlineHandler);
    }
    this.#open();
    return done;
  }

  #open() {
    this.#timer = null;
    this.#lastError = null;
    let ws;
    try {
      ws = new WebSocket(this.socketUrl);
    } catch (err) {
      this.#fail(new AnteroomError('NETWORK_ERROR', String(err && err.message)));
      return;
    }
    this.#ws = ws;
    ws.onopen = () => this.#sendJoin(ws);
    ws.onmessage = (ev) => this.#onMessage(ws, ev.data);
    ws.onclose = (ev) => this.#onClose(ws, ev);
    ws.onerror = () => {}; // a close event always follows
  }

  #sendJoin(ws) {
    const o = this.#opts;
    const msg = { type: 'join' };
    if (o.token) msg.token = o.token;
    this.#joinHadResume = Boolean(this.#resume);
    if (this.#resume) {
      msg.resume = this.#resume;
    } else {
      if (o.name !== undefined && o.name !== null && o.name !== '') msg.name = String(o.name);
      if (o.metadata !== undefined) msg.metadata = o.metadata;
    }
    if (o.staff) msg.staff = true;
    this.#joinRid = this.#nextRid();
    msg.rid = this.#joinRid;
    this.#joinSentAt = Date.now();
    ws.send(JSON.stringify(msg));
  }

  #onMessage(ws, text) {
    if (ws !== this.#ws) return;
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== 'string') return;
    this.emit('frame', frame);
    switch (frame.type) {
      case 'ack':
        this.#onAck(frame);
        return;
      case 'error':
        this.#onError(frame.error || {});
        return;
      case 'access-state':
        return;
      case 'waiting':
        this.#onWaiting(frame);
        return;
      case 'queue-position':
        if (this.waiting) {
          this.waiting = { ...this.waiting, position: frame.position, waiting: frame.waiting };
          this.#reportWaiting();
        }
        return;
      case 'joined':
        this.#onJoined(frame);
        return;
      case 'canceled':
        // Only this client cancels its own knock (Cancel or abort), which already ends it.
        if (!this.#closing) this.#fail(new AnteroomError('CANCELED', 'The knock was canceled.'));
        return;
      case 'entry-requested':
      case 'entry-updated':
        this.#onEntry(frame);
        return;
      case 'entry-resolved':
        this.#dropRequest(frame.request_id, frame.outcome, {
          requestId: frame.request_id,
          outcome: frame.outcome,
          by: frame.by,
        });
        return;
      case 'entry-canceled':
        this.#dropRequest(frame.request_id, 'canceled', {
          requestId: frame.request_id,
          reason: frame.reason,
        });
        return;
      case 'participant-joined':
      case 'participant-updated':
        this.#upsertParticipant(frame.participant, frame.type);
        return;
      case 'participant-left':
        this.#participants.delete(frame.participant.participant_id);
        this.emit('participant-left', { participant: frame.participant });
        return;
      case 'room-updated':
        this.#setInfo(frame.room);
        return;
      case 'breakouts-updated':
        this.breakouts = frame.rooms || [];
        break;
      case 'lobby-message':
      case 'host-message':
      case 'wait-estimate':
      case 'deadline-extended':
      case 'room-opens':
        // While waiting: the host's words (to everyone waiting, or to this guest), more time,
        // when the room opens (early for an appointment window; null: it is open).
        if (this.waiting) {
          const w = { ...this.waiting };
          if (frame.type === 'lobby-message') w.message = frame.text || null;
          else if (frame.type === 'host-message') w.hostMessage = frame.text || null;
          else if (frame.type === 'wait-estimate') w.secondsPerGuest = frame.seconds_per_guest;
          else if (frame.type === 'room-opens') {
            w.opensAt = frame.opens_at ? new Date(Date.parse(frame.opens_at) + this.clockOffset) : null;
          } else w.expiresAt = new Date(Date.parse(frame.expires_at) + this.clockOffset);
          this.waiting = w;
          this.#reportWaiting();
        }
        break;
      case 'activity':
        this.activity = [...(frame.items || []).slice().reverse(), ...this.activity].slice(0, 50);
        break;
      case 'breakout-joined':
        this.breakout = frame.room || null;
        break;
      case 'breakout-left':
        this.breakout = null;
        break;
      case 'breakout-participant-joined':
      case 'breakout-participant-left':
        // Only the members of one's own breakout room hear these: keep its member list current.
        if (this.breakout && frame.participant) {
          const id = frame.participant.participant_id;
          const rest = (this.breakout.members || []).filter((m) => m.participant_id !== id);
          const members = frame.type === 'breakout-participant-joined' ? [...rest, frame.participant] : rest;
          this.breakout = { ...this.breakout, members };
        }
        break;
      case 'media-state':
        this.#setMedia(frame);
        break;
      case 'signal':
        this.#keepSignal(frame);
        break;
      default:
        break;
    }
    // Everything else (breakout-*, future types) is passed through by its own name.
    this.emit(frame.type, frame);
  }

  #onAck(frame) {
    if (frame.rid === this.#joinRid) {
      this.#joinRid = null;
      if (!frame.ok) {
        const code = frame.error && frame.error.code;
        if ((code === 'UNAVAILABLE' || code === 'RATE_LIMITED') && this.#ws) {
          // Transient (the database or channel layer is down, or too many frames): the
          // socket is closed and the join retried with backoff, keeping the resume key.
          this.#ws.close(1000);
          return;
        }
        this.#onError(frame.error || {});
        return;
      }
      if (frame.data && frame.data.level === 'full') this.#entered();
      return;
    }
    const p = this.#pending.get(frame.rid);
    if (!p) return;
    this.#pending.delete(frame.rid);
    clearTimeout(p.timer);
    if (frame.ok) p.resolve(frame.data || {});
    else {
      const e = frame.error || {};
      p.reject(new AnteroomError(e.code || 'BAD_REQUEST', e.message, e));
    }
  }

  #onError(error) {
    const err = new AnteroomError(error.code || 'BAD_REQUEST', error.message, error);
    this.#lastError = err;
    if (err.code === 'RATE_LIMITED' || err.code === 'UNAVAILABLE') {
      // Not the end of anything by itself; a close (4429) follows if it is.
      this.emit('error', err);
      return;
    }
    if (this.state !== 'joined' || this.#joinRid !== null) {
      // A failed join or knock: the server closes the socket after this frame (44xx).
      this.#fail(err);
      return;
    }
    this.emit('error', err);
  }

  #onWaiting(frame) {
    const resumed = this.#joinHadResume;
    if (frame.resume) this.#resume = frame.resume;
    const req = frame.request || {};
    if (this.#opts.clockOffset === undefined && !this.#joinHadResume && req.requested_at) {
      // A fresh knock is stamped by the server as it is stored: about "now" there.
      this.clockOffset = Math.round(
        (Date.now() + this.#joinSentAt) / 2 - Date.parse(req.requested_at),
      );
    }
    this.state = 'waiting';
    this.#attempt = 0;
    this.waiting = {
      requestId: req.id,
      requestedAt: toDate(req.requested_at),
      expiresAt: new Date(Date.parse(req.expires_at) + this.clockOffset),
      position: this.waiting ? this.waiting.position : null,
      waiting: this.waiting ? this.waiting.waiting : null,
      status: 'waiting',
      resumed,
      // 'sent-to-lobby': a moderator sent this participant back to the waiting room.
      reason: frame.reason || (this.waiting ? this.waiting.reason : null) || null,
      message: this.waiting ? this.waiting.message || null : null,
      hostMessage: this.waiting ? this.waiting.hostMessage || null : null,
      secondsPerGuest: this.waiting ? this.waiting.secondsPerGuest ?? null : null,
      // Early for an appointment window: when the room opens (a Date on the local clock).
      opensAt: this.waiting ? this.waiting.opensAt ?? null : null,
    };
    this.#reportWaiting();
  }

  #reportWaiting() {
    if (this.state === 'joined' || !this.waiting) return;
    if (this.#settled) {
      // The room was handed out already: its presence lapsed and it is knocking again.
      this.emit('waiting', { ...this.waiting });
      return;
    }
    const cb = this.#opts.onWaiting;
    if (typeof cb === 'function') {
      try {
        cb({ ...this.waiting }, this);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  #onJoined(frame) {
    const wasWaiting = this.state === 'waiting';
    if (frame.resume) this.#resume = frame.resume;
    this.self = frame.participant;
    this.#setInfo(frame.room, { silent: !this.#everJoined });
    this.breakouts = frame.breakouts || [];
    if (Array.isArray(frame.activity)) this.activity = frame.activity;
    if (frame.media) this.#setMedia(frame.media);
    const mine = this.self && this.self.breakout_id;
    this.breakout = mine ? this.breakouts.find((b) => b.id === mine) || { id: mine } : null;
    const fresh = new Map((frame.participants || []).map((p) => [p.participant_id, p]));
    if (this.#everJoined) {
      for (const [id, p] of this.#participants) {
        if (!fresh.has(id)) this.emit('participant-left', { participant: p });
      }
      for (const [id, p] of fresh) {
        if (!this.#participants.has(id)) this.emit('participant-joined', { participant: p });
      }
    }
    this.#participants = fresh;
    this.state = 'joined';
    this.#attempt = 0;
    // Pending knocks are replayed right after `joined`; the join ack closes the replay.
    this.#replay = this.#joinRid !== null ? new Set() : null;
    if (wasWaiting && this.#joinRid === null) this.#entered(); // admitted: no ack follows
  }

  #entered() {
    if (this.#replay) {
      for (const [id, r] of this.#requests) {
        if (!this.#replay.has(id)) {
          this.#requests.delete(id);
          this.emit('entry-removed', { request: r, reason: 'gone' });
        }
      }
      this.#replay = null;
    }
    this.waiting = null;
    const again = this.#everJoined;
    this.#everJoined = true;
    if (!this.#settle(this)) {
      if (again) this.emit('reconnected', { room: this });
    }
  }

  #onEntry(frame) {
    const data = frame.request;
    if (!data || !data.id) return;
    this.#replay?.add(data.id);
    const known = this.#requests.get(data.id);
    if (known) {
      known.update(data);
      this.emit('entry-updated', known);
      return;
    }
    const r = new EntryRequest(this, data);
    this.#requests.set(data.id, r);
    this.emit('entry-requested', r);
  }

  #dropRequest(id, outcome, detail) {
    const r = this.#requests.get(id) || null;
    this.#requests.delete(id);
    if (r) r.status = outcome;
    const payload = { ...detail, request: r };
    this.emit(outcome === 'canceled' ? 'entry-canceled' : 'entry-resolved', payload);
    this.emit('entry-removed', { request: r, requestId: id, reason: outcome, ...detail });
  }

  #upsertParticipant(p, type) {
    if (!p) return;
    this.#participants.set(p.participant_id, p);
    if (this.self && p.participant_id === this.self.participant_id) this.self = p;
    this.emit(type, { participant: p });
  }

  #setInfo(info, { silent = false } = {}) {
    if (!info) return;
    const changed = JSON.stringify(info) !== JSON.stringify(this.info);
    this.info = info;
    if (changed && !silent) this.emit('room-updated', info);
  }

  #onClose(ws, ev) {
    if (ws !== this.#ws) return;
    this.#ws = null;
    for (const [rid, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new AnteroomError('DISCONNECTED'));
      this.#pending.delete(rid);
    }
    if (this.#closing) {
      this.#finish({ code: 'LEFT' });
      return;
    }
    if (ev.code >= 4000 && ev.code < 5000) {
      // The server ended it on purpose (44xx); the error frame before the close says why.
      const code = ERROR_FOR_CLOSE.get(ev.code) || 'CLOSED';
      this.#fail(this.#lastError || new AnteroomError(code, ev.reason || undefined));
      return;
    }
    this.#retry(ev.code);
  }

  #retry(closeCode) {
    // Before the first waiting/joined frame there is nothing to resume: a few tries, then fail.
    const established = this.#resume !== null || this.state === 'waiting' || this.#everJoined;
    const r = this.#opts.reconnect || {};
    const limit = established ? (r.maxAttempts ?? Infinity) : (r.initialAttempts ?? 3);
    if (this.#attempt >= limit) {
      this.#fail(new AnteroomError('NETWORK_ERROR', `Connection lost (${closeCode}).`));
      return;
    }
    const base = r.baseMs ?? 500;
    const cap = r.maxMs ?? 8000;
    const delay = Math.round(Math.min(cap, base * 2 ** this.#attempt) * (0.5 + Math.random() / 2));
    this.#attempt += 1;
    const previous = this.state;
    this.state = 'reconnecting';
    const detail = { attempt: this.#attempt, delay, closeCode };
    if (previous === 'waiting' && this.waiting) {
      this.waiting = { ...this.waiting, status: 'reconnecting' };
      this.#reportWaiting();
    }
    if (this.#settled) this.emit('reconnecting', detail);
    this.#timer = setTimeout(() => this.#open(), delay);
  }

  async #abort() {
    if (this.#settled) return;
    const ws = this.#ws;
    this.#closing = true;
    clearTimeout(this.#timer);
    if (ws && ws.readyState === WebSocket.OPEN && this.#joinSentAt) {
      // Frames of one socket are handled in order, so this reaches a knock the server is still
      // storing. A guest already in (not yet acknowledged) leaves instead.
      const type = this.state === 'joined' ? 'leave' : 'cancel';
      try {
        await this.request(type, {}, { timeout: 3000, allowClosing: true });
      } catch {
        // Not waiting any more (decided meanwhile): closing is all that is left.
      }
    }
    this.#settle(null, abortError());
    this.#finish({ code: 'ABORTED' });
  }

  /** Resolve or reject the join promise once; returns false if it was already settled. */
  #settle(value, error) {
    if (this.#settled) return false;
    this.#settled = true;
    if (this.#abortHandler) this.#opts.signal.removeEventListener('abort', this.#abortHandler);
    if (error) this.#reject(error);
    else this.#resolve(value);
    return true;
  }

  #fail(err) {
    if (!this.#settle(null, err)) this.emit('closed', { code: err.code, error: err });
    this.#teardown();
  }

  #finish(detail) {
    const wasOpen = this.state !== 'closed';
    this.#teardown();
    if (wasOpen && this.#everJoined) this.emit('closed', detail);
  }

  #teardown() {
    this.state = 'closed';
    this.#closing = true;
    clearTimeout(this.#timer);
    if (this.#onlineHandler) globalThis.removeEventListener('online', this.#onlineHandler);
    const ws = this.#ws;
    this.#ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) {
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
  }
}

function mediaFlags(which) {
  if (!which) return { audio: true, video: true };
  return { audio: Boolean(which.audio), video: Boolean(which.video) };
}

/**
 * @typedef {{room?: string, url?: string, token?: string, name?: string,
 *            metadata?: Record<string, any>, onWaiting?: (info: Record<string, any>) => void,
 *            signal?: AbortSignal, staff?: boolean, resume?: string | null,
 *            clockOffset?: number,
 *            reconnect?: {baseMs?: number, maxMs?: number, maxAttempts?: number,
 *                         initialAttempts?: number}}} JoinOptions
 */

/**
 * Join a room: knock when the access level is `lobby`, enter directly when it is `full`.
 *
 * Options: `room` (or a room page `url`), `token`, `name`, `metadata` (JSON object ≤ 4 KiB),
 * `onWaiting(info)` (called on every change while waiting: {requestId, requestedAt, expiresAt,
 * position, waiting, status: 'waiting' | 'reconnecting', resumed, opensAt (a Date: early for the
 * room's appointment window, it opens then; else null), message, hostMessage, secondsPerGuest}),
 * `signal` (AbortSignal),
 * `url` (server base or room page URL; default: this page's origin), `staff` (a signed-in staff
 * session moderates), `resume` (a resume key kept from an earlier page), `clockOffset`,
 * `reconnect` ({baseMs, maxMs, maxAttempts, initialAttempts}).
 * @param {JoinOptions} [options]
 * @returns {Promise<Room>}
 */
export function join(options = {}) {
  let room;
  try {
    room = new Room(options);
  } catch (err) {
    return Promise.reject(err);
  }
  return room.start();
}

/**
 * Ask the access level without knocking: resolves {level: 'full' | 'lobby' | 'none', reason?};
 * rejects with INVALID_TOKEN, TOKEN_EXPIRED, TOKEN_REVOKED, ROOM_NOT_FOUND, ....
 * @param {{room?: string, token?: string, url?: string, timeout?: number}} [options]
 * @returns {Promise<{level: 'full' | 'lobby' | 'none', reason?: string}>}
 */
export function preauth({ room, token, url, timeout = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    let target;
    try {
      target = socketUrl(room, url);
    } catch (err) {
      reject(err);
      return;
    }
    const ws = new WebSocket(target.url);
    let reason;
    let done = false;
    const finish = (fn, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      fn(value);
      if (ws.readyState <= WebSocket.OPEN) ws.close(1000);
    };
    const timer = setTimeout(() => finish(reject, new AnteroomError('TIMEOUT')), timeout);
    ws.onopen = () => {
      const msg = { type: 'preauth', rid: 'preauth' };
      if (token) msg.token = token;
      ws.send(JSON.stringify(msg));
    };
    ws.onmessage = (ev) => {
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (frame.type === 'access-state') reason = frame.reason;
      else if (frame.type === 'ack' && frame.rid === 'preauth') {
        if (frame.ok) finish(resolve, reason ? { ...frame.data, reason } : { ...frame.data });
        else {
          const e = frame.error || {};
          finish(reject, new AnteroomError(e.code || 'BAD_REQUEST', e.message, e));
        }
      } else if (frame.type === 'error') {
        const e = frame.error || {};
        finish(reject, new AnteroomError(e.code || 'BAD_REQUEST', e.message, e));
      }
    };
    ws.onclose = (ev) => {
      const code = ERROR_FOR_CLOSE.get(ev.code) || 'NETWORK_ERROR';
      finish(reject, new AnteroomError(code));
    };
  });
}
