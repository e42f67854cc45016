/**
 * Paintbrush socket: one multiplexed WebSocket per page (docs/protocol.md, section 2), that
 * reconnects by itself and re-opens every subscription, each with a fresh snapshot.
 * When the server says a subscription may have missed an event (`resync`, protocol
 * v1.1), it re-opens just that one with a snapshot, on the same connection.
 *
 *     import { getSocket } from "./socket.js";
 *     import { effect } from "./signals.js";
 *
 *     const socket = getSocket();                      // ws(s)://<host>/ws, shared
 *     const stop = socket.subscribe("todos", (msg) => console.log(msg.action));
 *     const room = socket.subscribe("messages", console.log, { where: { room: 3 }, last: 50 });
 *     effect(() => console.log(socket.connected.get() ? "live" : "offline"));
 *     stop();                                          // closedoc when the last one goes
 *
 * A subscription is named by its resource and its `where` (protocol v1.2, section 2b):
 * one socket holds several scopes of a resource, and every frame of a scope carries its
 * `where`, by which it is routed to that scope's subscribers only.
 *
 * Browser globals (location, WebSocket, setTimeout) are looked up only when used, so
 * the module imports anywhere and tests can substitute them.
 */
import { signal } from "./signals.js";

// #region LiveSocket

/**
 * Reconnect delays. The cap is what bounds how long a page stays offline once the server
 * is back: every page of a server that was down a while is waiting at the cap, so with
 * 5 s (not the 30 s it was) each is live again within 5 s of the server's return. A
 * failed attempt costs the server one refused handshake, cheap next to the snapshots
 * the reconnect asks for, so a longer cap bought little. The jitter (equal jitter, see
 * `_reconnectLater`) spreads those reconnects, and their snapshots, over the last half
 * of the cap instead of one instant.
 */
const _DEFAULT_BACKOFF = { initial: 500, max: 5000, factor: 2 };

/**
 * @typedef {object} SocketOptions
 * @property {typeof WebSocket} [WebSocket]  the class to open connections with (default: the global one)
 * @property {{initial?: number, max?: number, factor?: number}} [backoff]  reconnect delays, in ms
 *   (default: 500 at first, doubling up to 5000; each delay jittered over its upper half)
 * @property {() => number} [random]  jitter source in [0, 1) (default: Math.random)
 */

/**
 * @typedef {object} SubscribeOptions
 * @property {Record<string, unknown> | null} [where]  a scope: equality conditions on the
 *   resource's declared fields, e.g. `{room: 3}` (none, or an empty object: the whole resource)
 * @property {number} [last]  a window: the snapshot holds only the scope's last `last` rows
 * @property {boolean} [patch]  "doc" only: ask for the document's changes as JSON Patches
 *   (protocol v1.2, section 2c) rather than the whole document at every push
 */

/**
 * One server subscription: a resource, or a scope of one, and its subscribers.
 *
 * @typedef {object} _Subscription
 * @property {object} opendoc  the request that opens it (again, after a reconnect)
 * @property {object} reopen  the request that opens it again on the same connection (a resync)
 * @property {object} closedoc  the request that closes it
 * @property {Set<{handler: MessageHandler}>} subscribers
 */

/** @typedef {(message: any) => void} MessageHandler */

/**
 * A WebSocket to the Paintbrush server that outlives its connections. Build one with
 * `connect()` or share the page's with `getSocket()`.
 */
class LiveSocket {
  /**
   * @param {string} url
   * @param {SocketOptions} [options]
   */
  constructor(url, options = {}) {
    /** @type {string} */
    this.url = url;
    /** True while the connection is open: a page shows from it when it is offline. @type {import("./signals.js").Signal<boolean>} */
    this.connected = signal(false);
    /** The last error message that concerned no subscribed resource. @type {import("./signals.js").Signal<object|null>} */
    this.errors = signal(null);
    /** How many `resync` requests the server made about open subscriptions. @type {import("./signals.js").Signal<number>} */
    this.resyncs = signal(0);
    this._WebSocket = options.WebSocket;
    this._backoff = { ..._DEFAULT_BACKOFF, ...options.backoff };
    this._random = options.random ?? Math.random;
    /**
     * The subscriptions by key: the resource, and `?<canonical where>` for a scope.
     * @type {Map<string, _Subscription>}
     */
    this._subscriptions = new Map();
    /**
     * key -> the re-open a `resync` asked for, until its snapshot (or document)
     * arrives: `opened` once the server answered it, `again` if another resync came
     * meanwhile. @type {Map<string, {opened: boolean, again: boolean}>}
     */
    this._resyncing = new Map();
    this._ws = null;
    this._open = false; // the current connection is open (so sends go out)
    this._attempt = 0; // reconnects since the last successful open
    this._timer = null;
    this._stopped = false;
    this._connect();
  }

  /**
   * Deliver the messages of `resource` to `handler`: its events (and snapshots), the
   * errors the server answers to requests about it, and for "doc" the document pushes.
   * Subscribers of one resource share one server subscription.
   *
   * With `where`, the subscription is of that scope only (protocol v1.2, section 2b):
   * each scope of a resource is a subscription of its own, receiving the frames that
   * carry its `where` (in any key order); the unscoped one receives the frames without
   * one. `last` asks for a windowed snapshot, on opening and on every re-open. The first
   * subscriber of a scope sets its window: later ones share the subscription as it is.
   *
   * A subscriber that joins a resource already open receives no snapshot of its own;
   * `liveResource` and `liveDoc` share their state per socket for that reason.
   *
   * With `patch` (for "doc" only, protocol v1.2, section 2c), the document comes with a
   * revision and its later pushes may be JSON Patches; every opendoc of the subscription
   * (on reconnect, on resync) asks for that again. The first subscriber decides, as for
   * a window: the frames of "doc" name no subscription, so one socket holds one.
   *
   * When the server ends a subscription itself (`closed` with a `reason`: `forbidden`
   * when the user lost access to the scope), its subscribers receive that frame and
   * nothing more: it is not re-opened after a reconnect, and unsubscribing sends no
   * `closedoc`. Subscribing to that scope again opens it afresh.
   *
   * @param {string} resource
   * @param {MessageHandler} handler
   * @param {SubscribeOptions} [options]
   * @returns {() => void} unsubscribe
   */
  subscribe(resource, handler, options = {}) {
    if (options.where != null && (typeof options.where !== "object" || Array.isArray(options.where))) {
      throw new TypeError(`subscribe: where is an object of field names and values, e.g. {room: 3}, not ${JSON.stringify(options.where)}.`);
    }
    const where = _scopeOf(options.where);
    const key = _keyOf(resource, where);
    let subscription = this._subscriptions.get(key);
    if (!subscription) {
      const scope = where ? { where } : {};
      const windowed = options.last != null && resource !== "doc" ? { last: options.last } : {};
      const opendoc = { action: "opendoc", resource, ...scope, snapshot: true, ...windowed };
      const patched = resource === "doc" && options.patch === true ? { patch: true } : {};
      // The reserved "doc" has no snapshot: its answer is the current document itself (v1's
      // first opendoc keeps the `snapshot: true` it always sent, which the server ignores).
      const docOpen = resource === "doc" ? { action: "opendoc", resource, ...patched } : null;
      subscription = {
        opendoc: patched.patch ? docOpen : opendoc,
        reopen: docOpen ?? opendoc,
        closedoc: { action: "closedoc", resource, ...scope },
        subscribers: new Set(),
      };
      this._subscriptions.set(key, subscription);
      this._send(subscription.opendoc);
    }
    const { subscribers } = subscription;
    // An entry of its own, so the same function subscribed twice is two subscriptions.
    const entry = { handler };
    subscribers.add(entry);
    return () => {
      if (!subscribers.delete(entry) || subscribers.size) return;
      // The server may have ended it already (and the scope been subscribed afresh).
      if (this._subscriptions.get(key) !== subscription) return;
      this._subscriptions.delete(key);
      this._resyncing.delete(key);
      this._send(subscription.closedoc);
    };
  }

  /**
   * Open a subscription again on this connection, as a resync does: its subscribers
   * receive `opened` and a fresh snapshot (for "doc", the whole document). For a store
   * that finds itself out of step with the server: liveDoc, on a gap in the document's
   * revisions or a patch it cannot apply.
   *
   * Nothing is sent when a re-open is already on its way (its answer is read after
   * whatever showed the gap, so it answers that too), when the socket is not connected
   * (connecting re-opens every subscription), or when `resource` is not subscribed.
   *
   * @param {string} resource
   * @param {{where?: Record<string, unknown> | null}} [options]  the scope, as subscribed
   */
  reopen(resource, options = {}) {
    const key = _keyOf(resource, _scopeOf(options.where));
    if (!this._open || !this._subscriptions.has(key) || this._resyncing.has(key)) return;
    this._reopen(key);
  }

  /** Close the connection for good: no reconnect follows. */
  close() {
    this._stopped = true;
    clearTimeout(this._timer);
    this._timer = null;
    const ws = this._ws;
    this._ws = null;
    this._open = false;
    this._resyncing.clear();
    ws?.close();
    this.connected.set(false);
  }

  _connect() {
    const WebSocketClass = this._WebSocket ?? globalThis.WebSocket;
    const ws = new WebSocketClass(this.url);
    this._ws = ws;
    // Events of a connection this object has let go of (closed, replaced) are ignored.
    ws.onopen = () => {
      if (ws !== this._ws) return;
      this._open = true;
      this._attempt = 0;
      // The server forgot our subscriptions with the old connection; each comes back
      // with a snapshot, which also accounts for whatever happened while we were away.
      for (const subscription of this._subscriptions.values()) this._send(subscription.opendoc);
      this.connected.set(true);
    };
    ws.onmessage = (event) => {
      if (ws === this._ws) this._receive(event.data);
    };
    ws.onclose = () => {
      if (ws !== this._ws) return;
      this._ws = null;
      this._open = false;
      // The reconnect re-opens everything with snapshots: no resync is left to finish.
      this._resyncing.clear();
      this.connected.set(false);
      this._reconnectLater();
    };
  }

  _reconnectLater() {
    if (this._stopped) return;
    const { initial, max, factor } = this._backoff;
    const ceiling = Math.min(max, initial * factor ** this._attempt++);
    // "Equal jitter": wait at least half the backoff, spread over the other half, so the
    // pages of a restarted server come back neither at once nor immediately. Not "full
    // jitter" (anywhere in [0, ceiling]): a server that refuses at once (1013 "try again
    // later", 4029 too many sockets) would then see some pages retry within milliseconds.
    // Never longer than the cap: a page is live again within `max` of the server's return.
    const delay = ceiling / 2 + (this._random() * ceiling) / 2;
    this._timer = setTimeout(() => {
      this._timer = null;
      try {
        this._connect();
      } catch (err) {
        console.warn("paintbrush: could not open the socket, will retry", err);
        this._reconnectLater();
      }
    }, delay);
  }

  /** Send now if open; otherwise drop it: the re-opening on connect covers subscriptions. */
  _send(message) {
    if (this._open) this._ws.send(JSON.stringify(message));
  }

  _receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      console.warn("paintbrush: ignored a frame that is not JSON");
      return;
    }
    if (!message || typeof message !== "object") return;
    const isError = message.type === "error";
    const about = isError ? message.request : message;
    const resource = message.type === "doc" ? "doc" : about?.resource;
    const key = typeof resource === "string" && _keyOf(resource, _scopeOf(about.where));
    const subscription = key && this._subscriptions.get(key);
    if (subscription) {
      if (message.type === "resync") this._resync(key);
      else if (this._resyncing.has(key)) this._followResync(key, message);
      if (message.type === "closed" && message.reason != null) {
        // The server ended it (the user lost access): no frame of it follows, so it is
        // not the socket's to re-open or close any more.
        this._subscriptions.delete(key);
        this._resyncing.delete(key);
      }
      const { subscribers } = subscription;
      for (const entry of [...subscribers]) {
        // An earlier handler may have unsubscribed this one.
        if (subscribers.has(entry)) _deliver(entry.handler, message);
      }
    } else if (isError) {
      this.errors.set(message);
      console.warn(`paintbrush: server error ${message.error}: ${message.message}`);
    }
  }

  /**
   * The server cannot show that the subscription `key` received every event: open it
   * again with a snapshot (and its window), which the store applies by version (rows it
   * does not list are dropped). The reserved "doc" has no snapshot: its answer is the
   * current document itself (with a revision, when its patches were asked for).
   */
  _resync(key) {
    this.resyncs.set(this.resyncs.peek() + 1);
    const pending = this._resyncing.get(key);
    if (pending) {
      // One re-open in flight is enough, but its snapshot may have been read before
      // what caused this resync: ask once more when it has arrived.
      pending.again = true;
    } else {
      this._reopen(key);
    }
  }

  _reopen(key) {
    this._resyncing.set(key, { opened: false, again: false });
    this._send(this._subscriptions.get(key).reopen);
  }

  /** Watch the answer to a resync's re-open, and finish it when its snapshot is whole. */
  _followResync(key, message) {
    const pending = this._resyncing.get(key);
    if (message.type === "opened") {
      // The server answers in order and sends the snapshot right after `opened`, so the
      // next complete snapshot (or document) is the one this re-open asked for.
      pending.opened = true;
      return;
    }
    if (message.type === "error") {
      // Refused (say the user lost access): no snapshot follows, and asking again would
      // only be refused again.
      if (message.request?.action === "opendoc") this._resyncing.delete(key);
      return;
    }
    // A document's answer is a whole one: a patch cannot follow `opened` before it.
    const done = key === "doc"
      ? message.type === "doc" && message.doc !== undefined
      : message.action === "snapshot" && message.more !== true;
    if (!pending.opened || !done) return;
    this._resyncing.delete(key);
    if (pending.again) this._reopen(key);
  }
}

/** Call a handler, isolating the others from its exception (which is still reported). */
function _deliver(handler, message) {
  try {
    handler(message);
  } catch (err) {
    (globalThis.reportError ?? console.error)(err);
  }
}

// #endregion
// #region Connecting

/** @type {LiveSocket | null} */
let _pageSocket = null;

/** `ws(s)://<page host><path>` for a path, the URL itself otherwise. */
function _resolveUrl(url) {
  if (url && !url.startsWith("/")) return url;
  const { protocol, host } = globalThis.location;
  return `${protocol === "https:" ? "wss:" : "ws:"}//${host}${url || "/ws"}`;
}

/**
 * Open a LiveSocket.
 *
 * @param {string} [url]  a ws:// or wss:// URL, or a path on the page's host (default "/ws")
 * @param {SocketOptions} [options]
 * @returns {LiveSocket}
 */
function connect(url, options) {
  return new LiveSocket(_resolveUrl(url), options);
}

/**
 * The page's shared LiveSocket, connected to the default URL on first use (and again
 * if it was closed).
 *
 * @returns {LiveSocket}
 */
function getSocket() {
  if (!_pageSocket || _pageSocket._stopped) _pageSocket = connect();
  return _pageSocket;
}

// #endregion
// #region Scopes

/**
 * One text per `where`, whatever the order of its keys (at any depth): its JSON with the
 * keys sorted, as the server names a scope. `""` for none (undefined, null, `{}`).
 * liveResource keys its shared stores by it; a page may key its own maps so.
 *
 * @param {Record<string, unknown> | null | undefined} where
 * @returns {string}
 */
function canonicalWhere(where) {
  const scope = _scopeOf(where);
  return scope ? JSON.stringify(_sorted(scope)) : "";
}

function _sorted(value) {
  if (Array.isArray(value)) return value.map(_sorted);
  if (!value || typeof value !== "object") return value;
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, _sorted(value[k])]));
}

/**
 * A `where` as the socket keeps it: a copy with its keys sorted (the server echoes it
 * so), or null for none. An empty object names no condition: the whole resource.
 */
function _scopeOf(where) {
  if (where == null || typeof where !== "object" || Array.isArray(where)) return null;
  const keys = Object.keys(where).sort();
  return keys.length ? Object.fromEntries(keys.map((k) => [k, where[k]])) : null;
}

/** A subscription's name on the socket, as the server's: the resource, `?` and the where. */
function _keyOf(resource, where) {
  return where ? `${resource}?${canonicalWhere(where)}` : resource;
}

// #endregion

export { LiveSocket, canonicalWhere, connect, getSocket };
