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
 *     effect(() => console.log(socket.connected.get() ? "live" : "offline"));
 *     stop();                                          // closedoc when the last one goes
 *
 * Browser globals (location, WebSocket, setTimeout) are looked up only when used, so
 * the module imports anywhere and tests can substitute them.
 */
import { signal } from "./signals.js";

// #region LiveSocket

const _DEFAULT_BACKOFF = { initial: 500, max: 30000, factor: 2 };

/**
 * @typedef {object} SocketOptions
 * @property {typeof WebSocket} [WebSocket]  the class to open connections with (default: the global one)
 * @property {{initial?: number, max?: number, factor?: number}} [backoff]  reconnect delays, in ms
 * @property {() => number} [random]  jitter source in [0, 1) (default: Math.random)
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
    /** True while the connection is open. @type {import("./signals.js").Signal<boolean>} */
    this.connected = signal(false);
    /** The last error message that concerned no subscribed resource. @type {import("./signals.js").Signal<object|null>} */
    this.errors = signal(null);
    /** How many `resync` requests the server made about open subscriptions. @type {import("./signals.js").Signal<number>} */
    this.resyncs = signal(0);
    this._WebSocket = options.WebSocket;
    this._backoff = { ..._DEFAULT_BACKOFF, ...options.backoff };
    this._random = options.random ?? Math.random;
    /** @type {Map<string, Set<{handler: MessageHandler}>>} resource -> its subscribers */
    this._subscriptions = new Map();
    /**
     * resource -> the re-open a `resync` asked for, until its snapshot (or document)
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
   * A subscriber that joins a resource already open receives no snapshot of its own;
   * `liveResource` and `liveDoc` share their state per socket for that reason.
   *
   * @param {string} resource
   * @param {MessageHandler} handler
   * @returns {() => void} unsubscribe
   */
  subscribe(resource, handler) {
    let subscribers = this._subscriptions.get(resource);
    if (!subscribers) {
      this._subscriptions.set(resource, (subscribers = new Set()));
      this._send({ action: "opendoc", resource, snapshot: true });
    }
    // An entry of its own, so the same function subscribed twice is two subscriptions.
    const entry = { handler };
    subscribers.add(entry);
    return () => {
      if (!subscribers.delete(entry) || subscribers.size) return;
      this._subscriptions.delete(resource);
      this._resyncing.delete(resource);
      this._send({ action: "closedoc", resource });
    };
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
      for (const resource of this._subscriptions.keys()) {
        this._send({ action: "opendoc", resource, snapshot: true });
      }
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
    // pages of a restarted server come back neither at once nor immediately.
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
    const resource = isError
      ? message.request?.resource
      : message.type === "doc"
        ? "doc"
        : message.resource;
    const subscribers = typeof resource === "string" && this._subscriptions.get(resource);
    if (subscribers) {
      if (message.type === "resync") this._resync(resource);
      else if (this._resyncing.has(resource)) this._followResync(resource, message);
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
   * The server cannot show that the subscription of `resource` received every event:
   * open it again with a snapshot, which the store applies by version (rows it does
   * not list are dropped). The reserved "doc" has no snapshot: its answer is the
   * current document itself.
   */
  _resync(resource) {
    this.resyncs.set(this.resyncs.peek() + 1);
    const pending = this._resyncing.get(resource);
    if (pending) {
      // One re-open in flight is enough, but its snapshot may have been read before
      // what caused this resync: ask once more when it has arrived.
      pending.again = true;
    } else {
      this._reopen(resource);
    }
  }

  _reopen(resource) {
    this._resyncing.set(resource, { opened: false, again: false });
    this._send(resource === "doc" ? { action: "opendoc", resource } : { action: "opendoc", resource, snapshot: true });
  }

  /** Watch the answer to a resync's re-open, and finish it when its snapshot is whole. */
  _followResync(resource, message) {
    const pending = this._resyncing.get(resource);
    if (message.type === "opened") {
      // The server answers in order and sends the snapshot right after `opened`, so the
      // next complete snapshot (or document) is the one this re-open asked for.
      pending.opened = true;
      return;
    }
    if (message.type === "error") {
      // Refused (say the user lost access): no snapshot follows, and asking again would
      // only be refused again.
      if (message.request?.action === "opendoc") this._resyncing.delete(resource);
      return;
    }
    const done = resource === "doc"
      ? message.type === "doc"
      : message.action === "snapshot" && message.more !== true;
    if (!pending.opened || !done) return;
    this._resyncing.delete(resource);
    if (pending.again) this._reopen(resource);
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

export { LiveSocket, connect, getSocket };
