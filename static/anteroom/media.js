// @ts-check
// Anteroom calls: the media API over a joined Room (client.js) and the peer-to-peer engine.
//
//   import { startCall } from '/static/anteroom/media.js';   // or: await room.startCall(opts)
//   const call = await startCall(room, { audio: true, video: true });
//   call.on('track-started', ({ participantId, kind, track }) => …);
//   call.setMicrophone(false); call.setCamera(true); await call.shareScreen(true);
//
// The server decides who talks to whom and what each may send (`joined.media`, `media-state`):
// the call follows it. A lost permission stops the sender (`replaceTrack(null)`: nothing is sent,
// not even silence) and the control cannot turn it back on until the permission returns.
//
// Engines (one per call, picked by `media.mode`) implement:
//   engine = createEngine({ signal(to, data), iceServers, selfId, publisher })
//   engine.setPeers(ids) · engine.onSignal(from, data) · engine.setPermissions(p)
//   engine.setLocalTracks({ audio, video, screen }) · engine.getStats() · engine.close()
//   engine.setState?(mediaState)   (SFU engines read `sfu` from it)
//   events (engine.on): 'track-started' / 'track-stopped' {participantId, kind, track}, 'error'
// The mesh engine is below; `media-janus.js` exports the SFU one.

import { Emitter } from './client.js';

/** @typedef {import('./client.js').Room} Room */

/** What a browser can send: `screen` is a second video track (a display capture). */
/** @typedef {'audio' | 'video' | 'screen'} Kind */

/** What the server lets this participant do (`media.permissions`). */
/** @typedef {{audio: boolean, video: boolean, screen: boolean, receive: boolean}} Permissions */

/** One track (or none) per kind. */
/** @typedef {{audio: MediaStreamTrack | null, video: MediaStreamTrack | null,
 *             screen: MediaStreamTrack | null}} Tracks */

/** What a participant says it sends (`media-update`, `media.states`). */
/** @typedef {{audio: boolean, video: boolean, screen: boolean}} Sending */

/** `track-started` / `track-stopped`. */
/** @typedef {{participantId: string, kind: Kind, track: MediaStreamTrack}} TrackEvent */

/**
 * How to reach the media server in SFU mode (`media.sfu`, docs/protocol.md).
 * @typedef {{url?: string, room?: number, token?: string, id?: number, display?: string}} Sfu
 */

/**
 * The media state of `joined.media` and `media-state` (docs/protocol.md "Calls").
 * @typedef {{mode?: 'mesh' | 'sfu', room?: string, seq?: number, permissions?: Partial<Permissions>,
 *            publisher?: boolean, peers?: string[], states?: Record<string, Partial<Sending>>,
 *            max_publishers?: number, ice_servers?: RTCIceServer[], limit?: string | null,
 *            sfu?: Sfu, error?: string}} MediaState
 */

/**
 * The `data` of a `signal` between two peers (docs/protocol.md): the sender's connection
 * `gen`, the receiver's connection `to` it answers, a description or candidates, the id of
 * the sender's screen stream. Neither description nor candidates: a hello.
 * @typedef {{gen: number, to?: number, description?: RTCSessionDescriptionInit,
 *            candidates?: RTCIceCandidateInit[], screen?: string}} SignalData
 */

/**
 * What `createEngine` is given (the SFU engine also reads `sfu` from `setState`).
 * @typedef {{signal: (to: string, data: Omit<SignalData, 'gen'> & {gen?: number}) => void,
 *            iceServers?: RTCIceServer[], selfId: string, publisher?: boolean,
 *            room?: Room}} EngineOptions
 */

/**
 * The engine interface (the mesh engine below, `media-janus.js`'s SFU one). Per peer
 * `getStats` gives {connection, inbound: {"kind:mid": {kind, bytes, framesDecoded,
 * frameWidth}}, outbound: {…}}.
 * @typedef {Emitter & {
 *   setPeers(ids: string[]): void,
 *   onSignal(from: string, data: SignalData): void,
 *   setPermissions(p: Permissions): void,
 *   setLocalTracks(tracks: Tracks): void,
 *   getStats(): Promise<Record<string, PeerStats>>,
 *   close(): void,
 *   setState?: (state: MediaState) => void,
 *   setPublisher?: (publisher: boolean) => void,
 * }} Engine
 */

/**
 * @typedef {{kind: string, bytes?: number, framesDecoded?: number, frameWidth?: number}} RtpStats
 * @typedef {{connection: RTCPeerConnectionState, inbound: Record<string, RtpStats>,
 *            outbound: Record<string, RtpStats>}} PeerStats
 */

/** @type {Kind[]} */
const KINDS = ['audio', 'video', 'screen'];
const STUCK_MS = 6000;
/** @type {Permissions} */
const NONE = { audio: false, video: false, screen: false, receive: false };

let lastGen = 0;
function nextGen() {
  // Grows across page loads too (a reloaded page must not look older than its last connection).
  lastGen = Math.max(lastGen + 1, Date.now());
  return lastGen;
}

// The mesh engine --------------------------------------------------------------------------

class Peer {
  /**
   * @param {MeshEngine} engine
   * @param {string} id
   */
  constructor(engine, id) {
    this.engine = engine;
    this.id = id;
    this.gen = nextGen();
    /** @type {number | null} their connection for us, once heard */
    this.remoteGen = null;
    /** @type {string | null} the id of their screen-share stream */
    this.remoteScreen = null;
    this.polite = engine.selfId > id;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.closed = false;
    /** @type {Record<Kind, RTCRtpSender> | null} when this side publishes */
    this.senders = null;
    /** @type {Partial<Record<Kind, MediaStreamTrack>>} */
    this.remote = {};
    /** @type {Promise<void>} */
    this.queue = Promise.resolve();
    /** @type {RTCIceCandidateInit[]} */
    this.pendingCandidates = [];
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.flushTimer = null;
    const pc = new RTCPeerConnection({ iceServers: engine.iceServers });
    this.pc = pc;
    // One operation at a time per connection (offers, answers, candidates): a collision is then
    // always seen as a signaling state, never as two calls racing.
    pc.onnegotiationneeded = () => {
      this.queue = this.queue.then(() => this.negotiate());
    };
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate || !candidate.candidate) return;
      this.pendingCandidates.push(candidate.toJSON());
      if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), 25);
    };
    pc.ontrack = ({ track, streams }) => {
      const stream = streams && streams[0];
      /** @type {Kind} */
      const kind =
        track.kind === 'audio' ? 'audio' : stream && stream.id === this.remoteScreen ? 'screen' : 'video';
      this.remote[kind] = track;
      engine.emit('track-started', { participantId: id, kind, track });
      track.addEventListener('ended', () => {
        if (this.remote[kind] === track) {
          delete this.remote[kind];
          engine.emit('track-stopped', { participantId: id, kind, track });
        }
      });
    };
    pc.oniceconnectionstatechange = () => {
      if (pc.iceConnectionState === 'failed' && engine.publisher) pc.restartIce();
    };
    // A connection that is not up after a while starts afresh (one side of each pair does it;
    // the other follows the new connection's hello).
    this.watchdog = setInterval(() => {
      if (this.closed || pc.connectionState === 'connected') return;
      if (Date.now() - this.gen > STUCK_MS && engine.selfId < id) engine.restart(id);
    }, 1000);
    if (engine.publisher) this.addSenders();
    this.send({}); // hello: "this is my connection for you"
  }

  addSenders() {
    if (this.senders || this.closed) return;
    const e = this.engine;
    /** @type {(kind: Kind, stream: MediaStream) => RTCRtpSender} */
    const add = (kind, stream) =>
      this.pc.addTransceiver(kind === 'audio' ? 'audio' : 'video', {
        direction: 'sendonly',
        streams: [stream],
      }).sender;
    this.senders = {
      audio: add('audio', e.camStream),
      video: add('video', e.camStream),
      screen: add('screen', e.screenStream),
    };
    this.applyTracks();
  }

  applyTracks() {
    if (!this.senders || this.closed) return;
    for (const kind of KINDS) {
      const track = this.engine.effective(kind);
      const sender = this.senders[kind];
      if (sender.track !== track) sender.replaceTrack(track).catch(() => {});
    }
  }

  /** @param {Omit<SignalData, 'gen'>} data */
  send(data) {
    if (this.closed) return;
    /** @type {SignalData} */
    const out = { gen: this.gen, ...data };
    if (this.remoteGen !== null) out.to = this.remoteGen;
    this.engine.signal(this.id, out);
  }

  flush() {
    this.flushTimer = null;
    const candidates = this.pendingCandidates.splice(0, 32);
    if (candidates.length) this.send({ candidates });
    if (this.pendingCandidates.length) this.flushTimer = setTimeout(() => this.flush(), 0);
  }

  describe() {
    const d = this.pc.localDescription;
    this.send({ description: { type: d.type, sdp: d.sdp }, screen: this.engine.screenStream.id });
  }

  async negotiate() {
    if (!this.engine.publisher || this.closed) return; // the server refuses offers from receivers
    if (this.pc.signalingState !== 'stable') return; // negotiationneeded fires again when stable
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      // Read again: the await let other events change it (TypeScript keeps the narrowing above).
      const state = /** @type {RTCSignalingState} */ (this.pc.signalingState);
      if (state === 'have-local-offer') this.describe();
    } catch (err) {
      this.engine.emit('error', { participantId: this.id, error: err });
    } finally {
      this.makingOffer = false;
    }
  }

  /** @param {SignalData} data */
  receive(data) {
    this.queue = this.queue.then(() => this.#receive(data)).catch((err) => {
      this.engine.emit('error', { participantId: this.id, error: err });
    });
  }

  /** @param {SignalData} data */
  async #receive(data) {
    if (this.closed) return;
    const pc = this.pc;
    if (this.remoteGen === null) this.remoteGen = data.gen;
    if (data.screen) this.remoteScreen = data.screen;
    const d = data.description;
    if (d) {
      const collision = d.type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      await pc.setRemoteDescription(d);
      if (d.type === 'offer') {
        await pc.setLocalDescription();
        this.describe();
      }
    }
    for (const c of data.candidates || []) {
      try {
        await pc.addIceCandidate(c);
      } catch (err) {
        if (!this.ignoreOffer && pc.remoteDescription) throw err;
      }
    }
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.flushTimer);
    clearInterval(this.watchdog);
    for (const [kind, track] of /** @type {[Kind, MediaStreamTrack][]} */ (Object.entries(this.remote))) {
      this.engine.emit('track-stopped', { participantId: this.id, kind, track });
    }
    this.remote = {};
    this.pc.close();
  }
}

/** The peer-to-peer engine: one RTCPeerConnection per peer (perfect negotiation). */
export class MeshEngine extends Emitter {
  /** @param {EngineOptions} options */
  constructor({ signal, iceServers = [], selfId, publisher = false }) {
    super();
    this.signal = signal;
    this.iceServers = iceServers;
    this.selfId = selfId;
    this.publisher = publisher;
    /** @type {Map<string, Peer>} */
    this.peers = new Map();
    /** @type {Map<string, SignalData[]>} from people who are not (yet) peers: replayed when they are */
    this.early = new Map();
    /** @type {Map<string, number>} id -> the last connection of theirs we closed (older ones are stale) */
    this.gone = new Map();
    /** @type {Permissions} */
    this.permissions = { ...NONE };
    /** @type {Tracks} */
    this.local = { audio: null, video: null, screen: null };
    this.camStream = new MediaStream();
    this.screenStream = new MediaStream();
  }

  /** @param {Kind} kind */
  effective(kind) {
    return this.permissions[kind] ? this.local[kind] || null : null;
  }

  /** @param {boolean} publisher */
  setPublisher(publisher) {
    this.publisher = !!publisher;
    if (this.publisher) for (const p of this.peers.values()) p.addSenders();
    else for (const p of this.peers.values()) p.applyTracks();
  }

  /** @param {string[]} ids */
  setPeers(ids) {
    const want = new Set(ids);
    for (const [id, p] of this.peers) {
      if (!want.has(id)) {
        p.close();
        this.peers.delete(id);
        if (p.remoteGen !== null) this.gone.set(id, p.remoteGen);
        this.early.delete(id);
      }
    }
    for (const id of want) {
      if (this.peers.has(id) || id === this.selfId) continue;
      this.peers.set(id, new Peer(this, id));
      const early = this.early.get(id) || [];
      this.early.delete(id);
      for (const data of early) this.onSignal(id, data);
    }
  }

  /**
   * Hang up on one peer and call again (a new connection; they follow its hello).
   * @param {string} id
   */
  restart(id) {
    const old = this.peers.get(id);
    if (!old) return;
    old.close();
    if (old.remoteGen !== null) this.gone.set(id, old.remoteGen);
    this.peers.set(id, new Peer(this, id));
  }

  /**
   * @param {string} from
   * @param {SignalData} data
   */
  onSignal(from, data) {
    if (!data || typeof data.gen !== 'number') return;
    if (data.gen <= (this.gone.get(from) ?? -1)) return; // from a connection we hung up
    let p = this.peers.get(from);
    if (!p) {
      // Not a peer yet (their media-state came before ours): keep it for when they are.
      const list = this.early.get(from) || [];
      list.push(data);
      this.early.set(from, list.slice(-64));
      return;
    }
    if (data.to != null && data.to !== p.gen) return; // for a connection of ours that is gone
    if (p.remoteGen !== null && data.gen < p.remoteGen) return; // from one of theirs that is gone
    if (p.remoteGen !== null && data.gen > p.remoteGen) {
      if (data.to == null) {
        // They started afresh (a reload, or they hung up and came back): so do we.
        p.close();
        p = new Peer(this, from);
        this.peers.set(from, p);
      } else {
        p.remoteGen = data.gen;
      }
    }
    p.receive(data);
  }

  /** @param {Partial<Permissions>} perms */
  setPermissions(perms) {
    this.permissions = { ...NONE, ...perms };
    for (const p of this.peers.values()) p.applyTracks();
  }

  /** @param {Partial<Tracks>} tracks */
  setLocalTracks(tracks) {
    this.local = { ...this.local, ...tracks };
    for (const p of this.peers.values()) p.applyTracks();
  }

  /** @returns {Promise<Record<string, PeerStats>>} */
  async getStats() {
    /** @type {Record<string, PeerStats>} */
    const out = {};
    for (const [id, p] of this.peers) {
      const stats = await p.pc.getStats();
      /** @type {PeerStats} */
      const entry = { connection: p.pc.connectionState, inbound: {}, outbound: {} };
      stats.forEach((s) => {
        if (s.type === 'inbound-rtp' || s.type === 'outbound-rtp') {
          const side = s.type === 'inbound-rtp' ? entry.inbound : entry.outbound;
          const key = `${s.kind}:${s.mid ?? s.id}`;
          side[key] = {
            kind: s.kind,
            bytes: s.type === 'inbound-rtp' ? s.bytesReceived : s.bytesSent,
            framesDecoded: s.framesDecoded,
            frameWidth: s.frameWidth,
          };
        }
      });
      out[id] = entry;
    }
    return out;
  }

  close() {
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
  }
}

/** @param {EngineOptions} options */
export function createMeshEngine(options) {
  return new MeshEngine(options);
}

// The call --------------------------------------------------------------------------------

/** @typedef {(options: EngineOptions) => Engine} EngineFactory */

/**
 * `audio`/`video`: open (and send) them at the start; `stream`: use these tracks instead of
 * opening the devices (the device check's); `engineFactory`: an engine instead of the one
 * `media.mode` picks (tests).
 * @typedef {{audio?: boolean, video?: boolean, stream?: MediaStream | null,
 *            engineFactory?: EngineFactory | null}} CallOptions
 */

/** @param {MediaStreamTrack | null | undefined} t */
function stopTrack(t) {
  if (t) t.stop();
}

/**
 * A call in a joined room. Reads: `call.permissions` ({audio, video, screen, receive}),
 * `call.publisher`, `call.limit` ('mesh-full' when the peer-to-peer call has no publisher slot
 * left), `call.mediaRoom`, `call.local` ({audio, video, screen}: this browser's tracks, whether
 * they are sent or not), `call.enabled` (what the user turned on), `call.remote` (Map
 * participantId -> {audio, video, screen} tracks), `call.states` (Map participantId ->
 * {audio, video, screen} as each says it sends).
 * Events: 'track-started', 'track-stopped' ({participantId, kind, track}), 'permissions'
 * (the media state), 'participant-media' ({participantId, state}), 'local' (local tracks or
 * toggles changed), 'peers' (ids), 'error', 'ended'.
 */
export class Call extends Emitter {
  /**
   * @param {Room} room
   * @param {CallOptions} [options]
   */
  constructor(room, { audio = true, video = true, stream = null, engineFactory = null } = {}) {
    super();
    this.room = room;
    this.want = { audio: !!audio, video: !!video };
    this.givenStream = stream;
    this.engineFactory = engineFactory;
    /** @type {Engine | null} */
    this.engine = null;
    /** @type {Tracks} */
    this.local = { audio: null, video: null, screen: null };
    /** @type {Sending} */
    this.enabled = { audio: !!audio, video: !!video, screen: false };
    /** @type {Map<string, Partial<Record<Kind, MediaStreamTrack>>>} */
    this.remote = new Map();
    /** @type {Map<string, Sending>} */
    this.states = new Map();
    /** @type {Permissions} */
    this.permissions = { ...NONE };
    this.publisher = false;
    /** @type {string | null} */
    this.limit = null;
    /** @type {string | null | undefined} */
    this.mediaRoom = null;
    /** @type {string[]} */
    this.peers = [];
    /** @type {MediaState | null} */
    this.state = null;
    this.ended = false;
    /** @type {unknown} why the camera and microphone could not be opened */
    this.deviceError = null;
    /** @type {Record<string, (frame: any) => void>} room frames (their shapes: docs/protocol.md) */
    this.#handlers = {
      'media-state': (f) => this.#apply(f),
      signal: (f) => this.engine && this.engine.onSignal(f.from, f.data),
      'media-update': (f) => this.#peerState(f.participant_id, f),
      closed: () => this.end(),
      reconnected: () => this.room.media && this.#apply(this.room.media, true),
    };
  }

  #handlers;

  /** @returns {Promise<this>} */
  async start() {
    const media = this.room.media;
    if (!media) throw new Error('This room has no calls.');
    await this.#openDevices();
    const mode = media.mode || 'mesh';
    /** @type {EngineFactory | null} */
    let factory = this.engineFactory;
    if (!factory) factory = mode === 'mesh' ? createMeshEngine : (await import('./media-janus.js')).createEngine;
    this.engine = factory({
      signal: (to, data) => this.room.request('signal', { to, data }).catch(() => {}),
      iceServers: media.ice_servers || [],
      selfId: this.room.self.participant_id,
      publisher: !!media.publisher,
      room: this.room,
    });
    this.engine.on('track-started', (/** @type {TrackEvent} */ e) => {
      const tracks = this.remote.get(e.participantId) || {};
      tracks[e.kind] = e.track;
      this.remote.set(e.participantId, tracks);
      this.emit('track-started', e);
    });
    this.engine.on('track-stopped', (/** @type {TrackEvent} */ e) => {
      const tracks = this.remote.get(e.participantId);
      if (tracks && tracks[e.kind] === e.track) delete tracks[e.kind];
      this.emit('track-stopped', e);
    });
    this.engine.on('error', (/** @type {unknown} */ e) => this.emit('error', e));
    const early = this.room.takeSignals ? this.room.takeSignals() : [];
    for (const [type, fn] of Object.entries(this.#handlers)) this.room.on(type, fn);
    this.#apply(this.room.media || media, true);
    for (const f of early) this.engine.onSignal(f.from, f.data);
    return this;
  }

  async #openDevices() {
    if (this.givenStream) {
      this.local.audio = this.givenStream.getAudioTracks()[0] || null;
      this.local.video = this.givenStream.getVideoTracks()[0] || null;
      if (!this.local.video) this.enabled.video = false;
      if (!this.local.audio) this.enabled.audio = false;
      return;
    }
    if (!this.want.audio && !this.want.video) return;
    try {
      const s = await navigator.mediaDevices.getUserMedia({ audio: this.want.audio, video: this.want.video });
      this.local.audio = s.getAudioTracks()[0] || null;
      this.local.video = s.getVideoTracks()[0] || null;
    } catch (err) {
      this.deviceError = err;
      this.enabled.audio = this.enabled.video = false;
      this.emit('error', { error: err, devices: true });
    }
  }

  /**
   * @param {MediaState | null} state
   * @param {boolean} [force] apply even if older (the room's own copy after a reconnect)
   */
  #apply(state, force = false) {
    if (this.ended || !state) return;
    if (!force && this.state && typeof state.seq === 'number' && state.seq < this.state.seq) return;
    this.state = state;
    this.permissions = { ...NONE, ...(state.permissions || {}) };
    this.publisher = !!state.publisher;
    this.limit = state.limit || null;
    this.mediaRoom = state.room;
    for (const [id, s] of Object.entries(state.states || {})) this.#peerState(id, s, true);
    if (this.engine.setState) this.engine.setState(state);
    if (this.engine.setPublisher) this.engine.setPublisher(this.publisher);
    this.#pushTracks();
    this.engine.setPermissions(this.permissions);
    this.peers = [...(state.peers || [])];
    this.engine.setPeers(this.peers);
    for (const id of [...this.remote.keys()]) if (!this.peers.includes(id)) this.remote.delete(id);
    this.emit('permissions', state);
    this.emit('peers', this.peers);
    this.#announce();
  }

  /**
   * @param {string} id
   * @param {Partial<Sending>} s
   * @param {boolean} [silent] part of a whole media state (one render follows)
   */
  #peerState(id, s, silent = false) {
    const state = { audio: !!s.audio, video: !!s.video, screen: !!s.screen };
    this.states.set(id, state);
    this.emit('participant-media', { participantId: id, state, silent });
  }

  /**
   * What is sent: on, allowed, and a track to send.
   * @param {Kind} kind
   */
  sending(kind) {
    return !!(this.enabled[kind] && this.permissions[kind] && this.local[kind]);
  }

  #pushTracks() {
    /** @type {Tracks} */
    const tracks = { audio: null, video: null, screen: null };
    for (const kind of KINDS) tracks[kind] = this.enabled[kind] ? this.local[kind] : null;
    this.engine.setLocalTracks(tracks);
  }

  #lastAnnounced = '';

  #announce() {
    const s = { audio: this.sending('audio'), video: this.sending('video'), screen: this.sending('screen') };
    const key = JSON.stringify(s);
    this.emit('local', { ...s, enabled: { ...this.enabled }, permissions: { ...this.permissions } });
    if (key === this.#lastAnnounced || this.ended) return;
    this.#lastAnnounced = key;
    this.room.request('media-update', s).catch(() => {});
  }

  /**
   * Turn the microphone on or off (on only while allowed; the track is kept, not sent).
   * @param {boolean} on
   */
  setMicrophone(on) {
    this.enabled.audio = !!on && !!this.local.audio;
    this.#pushTracks();
    this.#announce();
    return this.enabled.audio;
  }

  /**
   * Turn the camera on or off (off releases the camera; on opens it again).
   * @param {boolean} on
   * @returns {Promise<boolean>} whether the camera is on now
   */
  async setCamera(on) {
    if (on && !this.local.video) {
      try {
        const s = await navigator.mediaDevices.getUserMedia({ video: true });
        this.local.video = s.getVideoTracks()[0];
      } catch (err) {
        this.emit('error', { error: err, devices: true });
        return false;
      }
    }
    if (!on && this.local.video && !this.givenStream) {
      stopTrack(this.local.video);
      this.local.video = null;
    }
    this.enabled.video = !!on && !!this.local.video;
    this.#pushTracks();
    this.#announce();
    return this.enabled.video;
  }

  /**
   * Share the screen (a display capture) or stop sharing.
   * @param {boolean} on
   * @returns {Promise<boolean>} whether the screen is shared now
   */
  async shareScreen(on) {
    if (on && !this.local.screen) {
      try {
        const s = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
        this.local.screen = s.getVideoTracks()[0];
        this.local.screen.addEventListener('ended', () => this.shareScreen(false));
      } catch (err) {
        this.emit('error', { error: err, screen: true });
        return false;
      }
    }
    if (!on && this.local.screen) {
      stopTrack(this.local.screen);
      this.local.screen = null;
    }
    this.enabled.screen = !!on && !!this.local.screen;
    this.#pushTracks();
    this.#announce();
    return this.enabled.screen;
  }

  /**
   * Switch devices (ids from enumerateDevices).
   * @param {{audioDeviceId?: string, videoDeviceId?: string}} [ids]
   */
  async useDevices({ audioDeviceId, videoDeviceId } = {}) {
    if (audioDeviceId) {
      const s = await navigator.mediaDevices.getUserMedia({ audio: { deviceId: { exact: audioDeviceId } } });
      stopTrack(this.local.audio);
      this.local.audio = s.getAudioTracks()[0];
    }
    if (videoDeviceId) {
      const s = await navigator.mediaDevices.getUserMedia({ video: { deviceId: { exact: videoDeviceId } } });
      stopTrack(this.local.video);
      this.local.video = s.getVideoTracks()[0];
    }
    this.#pushTracks();
    this.emit('local', { enabled: { ...this.enabled } });
  }

  /** @returns {Promise<Record<string, PeerStats>>} */
  getStats() {
    return this.engine ? this.engine.getStats() : Promise.resolve({});
  }

  /** Hang up: close every connection and release the devices (the room stays joined). */
  end() {
    if (this.ended) return;
    this.ended = true;
    for (const [type, fn] of Object.entries(this.#handlers)) this.room.off(type, fn);
    if (this.engine) this.engine.close();
    for (const kind of KINDS) stopTrack(this.local[kind]);
    if (this.room.state === 'joined') {
      this.room.request('media-update', { audio: false, video: false, screen: false }).catch(() => {});
    }
    this.emit('ended', {});
  }
}

/**
 * Start the call of a joined room: opens the devices (unless `stream` is given) and connects.
 * @param {Room} room
 * @param {CallOptions} [options]
 */
export async function startCall(room, options = {}) {
  const call = new Call(room, options);
  await call.start();
  return call;
}
