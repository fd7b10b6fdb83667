// @ts-check
/**
 * Anteroom's SFU media engine: a small client of the Janus HTTP API and its VideoRoom plugin.
 * Same engine interface as the mesh engine in media.js, which picks this one when
 * `media.mode === "sfu"` (docs/client.md "Media engines"):
 *
 *   import { createEngine } from '/static/anteroom/media-janus.js';
 *   const engine = createEngine({ iceServers, selfId, publisher });
 *   engine.on('track-started', ({ participantId, kind, track }) => show(participantId, track));
 *   engine.setState(mediaState);            // reads mediaState.sfu {url, room, token, id, display}
 *   engine.setLocalTracks({ audio, video, screen });   // MediaStreamTracks or null
 *   engine.setPermissions(p); engine.setPeers(ids); engine.setPublisher(bool);
 *   engine.getStats(); engine.close();
 *
 * The browser publishes once (one publisher handle: audio, camera, screen) and subscribes to
 * each publisher of its Janus room (one subscriber handle per feed, with its own `private_id`,
 * as the room requires). The token opens the Janus session and is in the room's allowed list.
 * The server enforces the room controls inside Janus; this engine only follows them (a
 * permission loss stops the sender with replaceTrack(null), so the UI shows the truth), and a
 * modified page gains nothing by ignoring them. When Janus refuses (token not registered yet,
 * restart) or is unreachable, the engine retries with backoff and emits `state` {state:
 * "connecting" | "connected" | "unavailable" | "idle"}. A new `sfu` (moved to a breakout, back)
 * leaves the old Janus room and joins the new one.
 *
 * No dependencies beyond client.js (Janus's own janus.js needs adapter.js and a global loader;
 * this is the subset Anteroom uses, on the documented HTTP API: create, attach, message,
 * trickle, long poll, keepalive, detach, destroy).
 */

import { Emitter } from './client.js';

/**
 * @typedef {import('./media.js').Kind} Kind
 * @typedef {import('./media.js').Permissions} Permissions
 * @typedef {import('./media.js').Tracks} Tracks
 * @typedef {import('./media.js').MediaState} MediaState
 * @typedef {import('./media.js').Sfu} Sfu
 * @typedef {import('./media.js').EngineOptions} EngineOptions
 * @typedef {import('./media.js').PeerStats} PeerStats
 * @typedef {import('./media.js').RtpStats} RtpStats
 */

/**
 * What Janus answers (the fields this engine reads; the HTTP API and VideoRoom docs).
 * @typedef {{janus: string, sender?: number, transaction?: string, reason?: string,
 *            data?: {id: number}, error?: {code: number, reason: string},
 *            plugindata?: {plugin?: string, data?: Record<string, any>},
 *            jsep?: RTCSessionDescriptionInit}} JanusMessage
 */

/** A VideoRoom request's answer: its plugin data, and the jsep when there is one. */
/** @typedef {{data: Record<string, any>, jsep?: RTCSessionDescriptionInit}} Answer */

/**
 * A subscribed feed: its publisher's participant id (`display`), its handle and connection,
 * what it sends.
 * @typedef {{display: string, handle: number | null, pc: RTCPeerConnection | null,
 *            tracks: {kind: Kind, track: MediaStreamTrack}[], kinds: Map<string, Kind>}} Feed
 */

/** The `sfu` this engine uses: one with a URL and a token. */
/** @typedef {Sfu & {url: string, token: string}} ReachableSfu */

/** Connected, this browser's publisher handle: its connection and a sender per kind. */
/** @typedef {{handle: number, pc: RTCPeerConnection | null,
 *             senders: Partial<Record<Kind, RTCRtpSender>>}} Publisher */

const BACKOFF_MS = [250, 500, 1000, 2000, 3000, 5000];
const KEEPALIVE_MS = 15000;

function tx() {
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}

class JanusRefused extends Error {
  /**
   * @param {number} code
   * @param {string} reason
   */
  constructor(code, reason) {
    super(`janus ${code}: ${reason}`);
    this.code = code;
  }
}

/** @type {Kind[]} */
const KINDS = ['audio', 'video', 'screen'];

/** The SFU engine (media.js's `Engine` interface, plus `state` events). */
export class JanusEngine extends Emitter {
  /** @param {Partial<EngineOptions> & {sfu?: Sfu | null}} [options] */
  constructor({ iceServers = [], selfId = null, publisher = true, sfu = null } = {}) {
    super();
    /** @type {ReachableSfu | null} */
    this.sfu = null;
    this.iceServers = iceServers;
    this.selfId = selfId;
    this.publishing = !!publisher;
    /** @type {Tracks} what the user turned on */
    this.tracks = { audio: null, video: null, screen: null };
    /** @type {Permissions} */
    this.permissions = { audio: false, video: false, screen: false, receive: true };
    /** @type {Set<string> | null} participant ids the server lists (null: every feed of the room) */
    this.peers = null;
    /** @type {number | null} */
    this.session = null;
    /** @type {Publisher | null} */
    this.publisher = null;
    /** @type {number | null} */
    this.privateId = null;
    /** @type {Map<number, Feed>} feed id -> what is subscribed */
    this.feeds = new Map();
    /** @type {Map<number, string>} feed id -> display (published in the room) */
    this.available = new Map();
    this.closed = false;
    /** @type {Map<string, {resolve: (a: Answer) => void, reject: (e: Error) => void}>} by transaction */
    this._pending = new Map();
    this.generation = 0; // bumped on every (re)connect; stale loops stop
    this.attempt = 0;
    /** @type {'idle' | 'connecting' | 'connected' | 'unavailable'} */
    this.state = 'idle';
    /** @type {{connects: number, firstTrackAt: number | null}} */
    this.stats = { connects: 0, firstTrackAt: null };
    if (sfu) this.setState({ sfu });
  }

  // interface ------------------------------------------------------------------------------

  /**
   * A media-state (or joined.media): connect to its `sfu`, or leave when it has none.
   * @param {MediaState} state
   */
  setState(state) {
    const sfu =
      state && state.sfu && state.sfu.url && state.sfu.token ? /** @type {ReachableSfu} */ (state.sfu) : null;
    if (state && state.error === 'UNAVAILABLE' && !sfu) {
      this._setState('unavailable'); // the server will send a new media-state when it is back
      return;
    }
    const same = sfu && this.sfu && sfu.url === this.sfu.url && sfu.room === this.sfu.room
      && sfu.token === this.sfu.token;
    if (same) return;
    this.sfu = sfu;
    this.attempt = 0;
    if (sfu) this._restart(0);
    else {
      this.generation += 1;
      this._teardown(true);
      this._setState('idle');
    }
  }

  /** @param {boolean} on */
  setPublisher(on) {
    if (this.publishing === !!on) return;
    this.publishing = !!on;
    if (this.sfu) this._restart(0); // publish (or stop) on a fresh session
  }

  /** @param {string[] | null} ids */
  setPeers(ids) {
    this.peers = ids ? new Set(ids.map(String)) : null;
    this._syncSubscriptions();
  }

  onSignal() {
    // SFU mode: no peer-to-peer signalling goes through the room socket.
  }

  /** @param {Partial<Permissions>} p */
  setPermissions(p) {
    const before = this.permissions;
    this.permissions = { ...before, ...p };
    if (before.receive !== this.permissions.receive && this.sfu) {
      this._restart(0); // receive lost: leave Janus; regained: join again
      return;
    }
    this._applySenders();
  }

  /**
   * {audio, video, screen}: the tracks the user turned on (null: off). Sent while allowed.
   * @param {Partial<Tracks>} [tracks]
   */
  setLocalTracks(tracks = {}) {
    for (const kind of KINDS) if (kind in tracks) this.tracks[kind] = tracks[kind] || null;
    this._applySenders();
  }

  /** The mesh engine's shape: {participantId: {connection, inbound: {"kind:mid": {kind,
   *  bytes, framesDecoded, frameWidth}}, outbound: {…}}} with one entry per subscribed feed;
   *  `outbound` is this browser's publisher (one upstream serves every peer). `kind` is
   *  audio, video or screen. */
  /** @returns {Promise<Record<string, PeerStats>>} */
  async getStats() {
    /** @type {Record<string, PeerStats>} */
    const out = {};
    /** @type {Record<string, RtpStats>} */
    const outbound = {};
    const pub = this.publisher && this.publisher.pc;
    if (pub) {
      /** @type {Map<string | null, Kind>} */
      const kindOf = new Map();
      pub.getTransceivers().forEach((t, i) => kindOf.set(t.mid, KINDS[i]));
      (await pub.getStats()).forEach((r) => {
        if (r.type === 'outbound-rtp') {
          const kind = kindOf.get(r.mid) || r.kind;
          outbound[`${kind}:${r.mid ?? r.id}`] = { kind, bytes: r.bytesSent, frameWidth: r.frameWidth };
        }
      });
    }
    for (const [feed, f] of this.feeds) {
      if (!f.pc) continue;
      /** @type {Record<string, RtpStats>} */
      const inbound = {};
      (await f.pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp') {
          const kind = r.kind === 'audio' ? 'audio' : f.kinds.get(String(r.mid)) || 'video';
          inbound[`${kind}:${r.mid ?? r.id}`] = {
            kind,
            bytes: r.bytesReceived,
            framesDecoded: r.framesDecoded,
            frameWidth: r.frameWidth,
          };
        }
      });
      out[f.display || String(feed)] = { connection: f.pc.connectionState, inbound, outbound };
    }
    return out;
  }

  close() {
    this.closed = true;
    this.generation += 1;
    this._teardown(true);
  }

  // events ---------------------------------------------------------------------------------

  /**
   * @param {string} type
   * @param {unknown} detail
   */
  _emit(type, detail) {
    this.emit(type, detail);
  }

  /** @param {JanusEngine['state']} state */
  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit('state', { state });
  }

  // Janus HTTP API -------------------------------------------------------------------------

  /**
   * @param {string} path
   * @param {Record<string, unknown>} body
   * @param {string} [transaction]
   * @returns {Promise<JanusMessage>}
   */
  async _post(path, body, transaction = tx()) {
    const resp = await fetch(this.sfu.url.replace(/\/$/, '') + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...body, token: this.sfu.token, transaction }),
    });
    if (resp.status === 403) throw new JanusRefused(403, 'unauthorized');
    const data = await resp.json();
    if (data.janus === 'error') throw new JanusRefused(data.error.code, data.error.reason);
    return data;
  }

  /**
   * @param {number} handle
   * @param {Record<string, unknown>} body
   * @param {RTCSessionDescriptionInit | undefined} jsep
   * @param {string} transaction
   */
  async _message(handle, body, jsep, transaction) {
    /** @type {Record<string, unknown>} */
    const msg = { janus: 'message', body };
    if (jsep) msg.jsep = jsep;
    return this._post(`/${this.session}/${handle}`, msg, transaction);
  }

  /**
   * @param {number} handle
   * @param {RTCIceCandidate | null} candidate
   */
  async _trickle(handle, candidate) {
    try {
      await this._post(`/${this.session}/${handle}`, {
        janus: 'trickle',
        candidate: candidate || { completed: true },
      });
    } catch (_) {
      // a lost trickle fails ICE, which the reconnect handles
    }
  }

  /** @returns {Promise<number>} */
  async _attach() {
    const r = await this._post(`/${this.session}`, {
      janus: 'attach',
      plugin: 'janus.plugin.videoroom',
    });
    return r.data.id;
  }

  // connect / recover ----------------------------------------------------------------------

  async _connect() {
    const gen = ++this.generation;
    if (!this.sfu) return;
    this._setState('connecting');
    try {
      if (!this.permissions.receive) {
        this._setState('idle'); // paused: nothing until it returns
        return;
      }
      const created = await this._post('', { janus: 'create' });
      if (gen !== this.generation) return;
      this.session = created.data.id;
      this._poll(gen, this.session);
      this._keepalive(gen, this.session);
      const handle = await this._attach();
      this.publisher = { handle, pc: null, senders: {} };
      const joined = await this._request(handle, {
        request: 'join',
        ptype: 'publisher',
        room: this.sfu.room,
        id: this.sfu.id,
        display: String(this.sfu.display || ''),
        token: this.sfu.token,
      });
      if (gen !== this.generation) return;
      this.privateId = joined.data.private_id;
      this.attempt = 0;
      this.stats.connects += 1;
      this._setState('connected');
      this._notePublishers(joined.data.publishers || []);
      if (this.publishing) await this._publish(gen);
    } catch (err) {
      if (gen !== this.generation || this.closed) return;
      this._restart(this._backoff(), err);
    }
  }

  _backoff() {
    const ms = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    return ms;
  }

  _restart(delay, err) {
    if (this.closed) return;
    this.generation += 1;
    const gen = this.generation;
    this._teardown(true);
    if (err) this._setState('unavailable');
    setTimeout(() => {
      if (gen === this.generation && !this.closed) this._connect();
    }, delay);
  }

  _teardown(destroy) {
    const session = this.session;
    for (const feed of [...this.feeds.keys()]) this._dropFeed(feed);
    this.available.clear();
    if (this.publisher && this.publisher.pc) this.publisher.pc.close();
    this.publisher = null;
    this.privateId = null;
    this.session = null;
    for (const w of this._pending.values()) w.reject(new Error('reconnecting'));
    this._pending.clear();
    if (session && destroy) {
      this._post(`/${session}`, { janus: 'destroy' }).catch(() => {});
    }
  }

  async _keepalive(gen, session) {
    while (gen === this.generation && !this.closed) {
      await new Promise((r) => setTimeout(r, KEEPALIVE_MS));
      if (gen !== this.generation) return;
      try {
        await this._post(`/${session}`, { janus: 'keepalive' });
      } catch (err) {
        if (gen === this.generation) this._restart(this._backoff(), err);
        return;
      }
    }
  }

  async _poll(gen, session) {
    const base = this.sfu.url.replace(/\/$/, '');
    while (gen === this.generation && !this.closed) {
      let events;
      try {
        const url = `${base}/${session}?maxev=10&rid=${Date.now()}&token=${encodeURIComponent(this.sfu.token)}`;
        const resp = await fetch(url);
        if (resp.status !== 200) throw new JanusRefused(resp.status, 'poll refused');
        events = await resp.json();
      } catch (err) {
        if (gen === this.generation) this._restart(this._backoff(), err);
        return;
      }
      if (gen !== this.generation) return;
      for (const ev of Array.isArray(events) ? events : [events]) this._onEvent(ev);
    }
  }

  // A VideoRoom request answers asynchronously: an event carrying the request's transaction
  // (its plugin data, and a jsep offer or answer when there is one).
  _request(handle, body, jsep) {
    const transaction = tx();
    return new Promise((resolve, reject) => {
      this._pending.set(transaction, { resolve, reject });
      this._message(handle, body, jsep, transaction).catch((err) => {
        this._pending.delete(transaction);
        reject(err);
      });
    });
  }

  _onEvent(ev) {
    if (ev.janus === 'keepalive' || ev.janus === 'ack') return;
    const handle = ev.sender;
    if (ev.janus === 'hangup' || ev.janus === 'detached') {
      if (this.publisher && handle === this.publisher.handle) {
        this._restart(this._backoff(), new Error(ev.reason || 'hangup'));
      } else {
        for (const [feed, f] of this.feeds) if (f.handle === handle) this._dropFeed(feed);
      }
      return;
    }
    if (ev.janus === 'webrtcup' || ev.janus === 'media' || ev.janus === 'slowlink') return;
    const data = (ev.plugindata && ev.plugindata.data) || null;
    if (!data) return;
    const waiter = ev.transaction && this._pending.get(ev.transaction);
    if (waiter) {
      this._pending.delete(ev.transaction);
      if (data.error_code) waiter.reject(new JanusRefused(data.error_code, data.error));
      else waiter.resolve({ data, jsep: ev.jsep });
      if (!data.publishers && data.unpublished === undefined && data.leaving === undefined) return;
    }
    if (data.error_code) {
      this._emit('error', { code: data.error_code, message: data.error });
      return;
    }
    if (data.videoroom === 'event' && data.leaving === 'ok') {
      // we were kicked: the server revoked this credential (or paused us)
      this._restart(this._backoff(), new Error('kicked'));
      return;
    }
    if (data.videoroom === 'destroyed') {
      this._restart(this._backoff(), new Error('room destroyed'));
      return;
    }
    if (data.publishers) this._notePublishers(data.publishers);
    // another publisher went: unpublished, left, or kicked by the server
    for (const field of ['unpublished', 'leaving', 'kicked']) {
      const gone = data[field];
      if (gone !== undefined && gone !== 'ok') {
        this.available.delete(gone);
        this._dropFeed(gone);
      }
    }
  }

  // publish --------------------------------------------------------------------------------

  _newPc(handle) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    pc.onicecandidate = (e) => this._trickle(handle, e.candidate);
    return pc;
  }

  _wanted(kind) {
    return this.permissions[kind] ? this.tracks[kind] : null;
  }

  async _publish(gen) {
    const pub = this.publisher;
    const pc = this._newPc(pub.handle);
    pub.pc = pc;
    // m-lines: 0 audio, 1 camera, 2 screen (the server counts a second video as a screen)
    for (const kind of KINDS) {
      const t = pc.addTransceiver(kind === 'audio' ? 'audio' : 'video', { direction: 'sendonly' });
      pub.senders[kind] = t.sender;
      const track = this._wanted(kind);
      if (track) await t.sender.replaceTrack(track);
    }
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const answer = await this._request(
      pub.handle,
      {
        request: 'publish',
        descriptions: [
          { mid: '1', description: 'camera' },
          { mid: '2', description: 'screen' },
        ],
      },
      { type: offer.type, sdp: offer.sdp },
    );
    if (gen !== this.generation) return;
    if (answer.jsep) await pc.setRemoteDescription(answer.jsep);
  }

  _applySenders() {
    const pub = this.publisher;
    if (!pub || !pub.pc) return;
    for (const kind of KINDS) {
      const sender = pub.senders[kind];
      if (!sender) continue;
      const want = this._wanted(kind);
      if (sender.track !== want) sender.replaceTrack(want).catch(() => {});
    }
  }

  // subscribe ------------------------------------------------------------------------------

  _notePublishers(list) {
    for (const p of list) {
      if (p.id === this.sfu.id) continue;
      this.available.set(p.id, String(p.display || ''));
    }
    this._syncSubscriptions();
  }

  _syncSubscriptions() {
    if (!this.session || this.privateId === null) return;
    for (const [feed, display] of this.available) {
      if (display === String(this.selfId)) continue;
      const wanted = this.peers === null || this.peers.has(display);
      if (wanted && !this.feeds.has(feed)) this._subscribe(feed, display);
      if (!wanted && this.feeds.has(feed)) this._dropFeed(feed);
    }
  }

  async _subscribe(feed, display) {
    const gen = this.generation;
    const entry = { display, handle: null, pc: null, tracks: [], kinds: new Map() };
    this.feeds.set(feed, entry);
    try {
      entry.handle = await this._attach();
      const attached = await this._request(entry.handle, {
        request: 'join',
        ptype: 'subscriber',
        room: this.sfu.room,
        streams: [{ feed }],
        private_id: this.privateId,
        token: this.sfu.token,
      });
      if (gen !== this.generation || this.feeds.get(feed) !== entry) return;
      const pc = this._newPc(entry.handle);
      entry.pc = pc;
      const described = new Map(
        (attached.data.streams || []).map((st) => [String(st.mid), st.feed_description || '']),
      );
      for (const [mid, d] of described) entry.kinds.set(mid, d === 'screen' ? 'screen' : 'video');
      pc.ontrack = (e) => {
        const track = e.track;
        const mid = e.transceiver && e.transceiver.mid;
        const kind = track.kind === 'audio' ? 'audio' : described.get(String(mid)) === 'screen' ? 'screen' : 'video';
        entry.tracks.push({ kind, track });
        if (this.stats.firstTrackAt === null) this.stats.firstTrackAt = performance.now();
        this._emit('track-started', { participantId: display, kind, track });
        track.addEventListener('ended', () => {
          this._emit('track-stopped', { participantId: display, kind, track });
        });
      };
      await pc.setRemoteDescription(attached.jsep);
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      await this._request(entry.handle, { request: 'start' }, {
        type: answer.type,
        sdp: answer.sdp,
      });
    } catch (err) {
      if (this.feeds.get(feed) === entry) this._dropFeed(feed);
      if (gen === this.generation && err instanceof JanusRefused && err.code === 428) return;
      if (gen === this.generation && !this.closed) {
        // retry this feed later if it is still published
        setTimeout(() => gen === this.generation && this._syncSubscriptions(), this._backoff());
      }
    }
  }

  _dropFeed(feed) {
    const entry = this.feeds.get(feed);
    if (!entry) return;
    this.feeds.delete(feed);
    for (const { kind, track } of entry.tracks) {
      this._emit('track-stopped', { participantId: entry.display, kind, track });
    }
    if (entry.pc) entry.pc.close();
    if (entry.handle && this.session) {
      this._post(`/${this.session}/${entry.handle}`, { janus: 'detach' }).catch(() => {});
    }
  }
}

export function createEngine(options) {
  return new JanusEngine(options);
}
