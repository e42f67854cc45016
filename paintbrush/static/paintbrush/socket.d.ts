/**
 * Declarations of socket.js: one multiplexed WebSocket per page (docs/protocol.md,
 * section 2) that reconnects by itself and re-opens every subscription with a snapshot,
 * and the shapes of the messages on it.
 *
 *     const socket = getSocket();                      // ws(s)://<host>/ws, shared
 *     const stop = socket.subscribe("todos", (msg) => console.log(msg.action));
 *     socket.subscribe("messages", (msg) => console.log(msg), { where: { room: 3 }, last: 50 });
 *     stop();                                          // closedoc when the last one goes
 */
import type { Item } from "./live.js";
import type { PatchOperation } from "./patch.js";
import type { Signal } from "./signals.js";

// #region Messages (docs/protocol.md; the AsyncAPI document describes them too)

/** A frame a client sends on `/ws`. */
export type ClientMessage = OpendocRequest | ClosedocRequest;

/**
 * A scope (protocol v1.2, section 2b): equality conditions on a resource's declared
 * fields, each value as the REST API renders that field, e.g. `{ room: 3 }`.
 */
export type Where = Record<string, unknown>;

export interface OpendocRequest {
  action: "opendoc";
  /** A live resource, or "doc" for the role document. */
  resource: string;
  /** Only the rows of this scope; a subscription is named by its resource and where. */
  where?: Where;
  /** true: the current rows follow `opened`, before any event of the resource. */
  snapshot?: boolean;
  /** With `snapshot`: only the scope's last N rows in the resource's order (a window). */
  last?: number;
  /** "doc" only (v1.2): the document with a revision, then its changes as JSON Patches. */
  patch?: boolean;
}

export interface ClosedocRequest {
  action: "closedoc";
  resource: string;
  /** Close only the subscription of this scope. */
  where?: Where;
}

/** A frame the server sends on `/ws`; `T` is the resource's item, `D` the role document. */
export type ServerMessage<T extends { id: string | number } = Item, D = RoleDocumentBase> =
  | OpenedMessage
  | ClosedMessage
  | SnapshotMessage<T>
  | CreateMessage<T>
  | UpdateMessage<T>
  | DeleteMessage
  | ResyncMessage
  | ErrorMessage
  | DocMessage<D>
  | DocPatchMessage;

/** Every frame of a scoped subscription carries its `where` (keys sorted). */
export interface OpenedMessage {
  type: "opened";
  resource: string;
  where?: Where;
}

/**
 * The answer to a closedoc, or, with a `reason`, the server ending the subscription:
 * `forbidden` when the user lost access to the scope. No frame of it follows.
 */
export interface ClosedMessage {
  type: "closed";
  resource: string;
  where?: Where;
  reason?: "forbidden" | (string & {});
}

/**
 * The rows the socket's user may see; all frames but the last of a split one carry
 * `more: true`. A windowed one (`last`) lists the scope's last rows only, and says
 * `complete` when they are all of it.
 */
export interface SnapshotMessage<T = Item> {
  resource: string;
  action: "snapshot";
  where?: Where;
  items: T[];
  more?: true;
  last?: number;
  complete?: true;
}

export interface CreateMessage<T = Item> {
  resource: string;
  action: "create";
  where?: Where;
  item: T;
}

/** Only the fields whose value changed; `version` is the row's after the change. */
export interface UpdateMessage<T extends { id: string | number } = Item> {
  resource: string;
  action: "update";
  where?: Where;
  id: T["id"];
  fields: Partial<Omit<T, "id" | "version">>;
  version: number;
}

/** `version` is one more than the row's last. */
export interface DeleteMessage {
  resource: string;
  action: "delete";
  where?: Where;
  id: string | number;
  version: number;
}

/** The subscription may have missed an event: the client re-opens it with a snapshot. */
export interface ResyncMessage {
  type: "resync";
  resource: string;
  where?: Where;
  reason?: string;
}

/** The socket's error codes (docs/protocol.md, section 2 and appendix). */
export type ErrorCode =
  | "bad_json"
  | "bad_message"
  | "unknown_action"
  | "unknown_resource"
  | "forbidden"
  | "too_large"
  | "limit_exceeded"
  | "rate_limited"
  | "unavailable"
  | "bad_where";

/** A request was refused; the socket stays open. */
export interface ErrorMessage {
  type: "error";
  error: ErrorCode | (string & {});
  message: string;
  /** The offending message, when it parsed. */
  request?: unknown;
  /** rate_limited, unavailable: seconds until the request may be made again. */
  retry_after?: number;
}

/** A role document: `{"role": <name>, ...}`. */
export interface RoleDocumentBase {
  role: string;
  [key: string]: unknown;
}

/**
 * The role document, pushed whole (`resource` is "doc" on `/ws`). Opened with `patch`
 * (protocol v1.2, section 2c), it carries its revision.
 */
export interface DocMessage<D = RoleDocumentBase> {
  type: "doc";
  resource?: "doc";
  doc: D;
  rev?: number;
}

/**
 * A change of the role document (v1.2, opened with `patch`): the JSON Patch that turns
 * revision `rev - 1` into `rev`. A client applies it only to that revision.
 */
export interface DocPatchMessage {
  type: "doc";
  resource?: "doc";
  patch: PatchOperation[];
  rev: number;
}

// #endregion
// #region LiveSocket

/** What socket.js needs of a WebSocket: the browser's, or a test double. */
export interface WebSocketLike {
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface SocketOptions {
  /** The class to open connections with (default: the global WebSocket). */
  WebSocket?: new (url: string) => WebSocketLike;
  /**
   * Reconnect delays, in ms (default: initial 500, max 5000, factor 2), each jittered
   * over its upper half ("equal jitter"). The cap bounds how long a page stays offline
   * once the server is back.
   */
  backoff?: { initial?: number; max?: number; factor?: number };
  /** Jitter source in [0, 1) (default: Math.random). */
  random?: () => number;
}

/** Receives the messages of one resource (see `LiveSocket.subscribe`). */
export type MessageHandler = (message: any) => void;

/** Which part of a resource a subscription holds (protocol v1.2, section 2b). */
export interface SubscribeOptions {
  /** A scope, e.g. `{ room: 3 }`; none (or `{}`): the whole resource. */
  where?: Where | null;
  /** A window: the snapshot holds only the scope's last `last` rows. */
  last?: number;
  /**
   * "doc" only: ask for the document's changes as JSON Patches (protocol v1.2, section
   * 2c), on every opendoc of the subscription. The first subscriber decides.
   */
  patch?: boolean;
}

/**
 * Anything with LiveSocket's `subscribe`: what liveResource and liveDoc take (liveDoc
 * with `patch` also needs `reopen`).
 */
export interface SubscribableSocket {
  subscribe(resource: string, handler: MessageHandler, options?: SubscribeOptions): () => void;
  reopen?(resource: string, options?: { where?: Where | null }): void;
}

/**
 * A WebSocket to the Paintbrush server that outlives its connections. Build one with
 * `connect()` or share the page's with `getSocket()`.
 */
export class LiveSocket implements SubscribableSocket {
  /** @param url a ws:// or wss:// URL (`connect()` resolves paths) */
  constructor(url: string, options?: SocketOptions);
  url: string;
  /** True while the connection is open: show from it when the page is offline. */
  connected: Signal<boolean>;
  /** The last error message that concerned no subscribed resource. */
  errors: Signal<ErrorMessage | null>;
  /** How many `resync` requests the server made about open subscriptions. */
  resyncs: Signal<number>;
  /**
   * Deliver the messages of `resource` to `handler`: its events (and snapshots), the
   * errors the server answers to requests about it, and for "doc" the document pushes.
   * Subscribers of one resource share one server subscription (and the first one's
   * snapshot: use liveResource / liveDoc, which share their state per socket).
   *
   * With `where`, only that scope: each scope of a resource is a subscription of its
   * own, receiving the frames that carry its `where` (in any key order), re-opened with
   * its window after a reconnect or a resync. The first subscriber sets the window.
   * When the server ends it (`closed` with a `reason`, e.g. `forbidden`), its
   * subscribers receive that frame and nothing more; it is not re-opened, and
   * unsubscribing sends no closedoc. For "doc", `patch` asks for JSON Patches (v1.2);
   * the first subscriber decides.
   *
   * @returns unsubscribe (closedoc, with the where, when the last subscriber goes)
   */
  subscribe(resource: string, handler: MessageHandler, options?: SubscribeOptions): () => void;
  /**
   * Open a subscription again on this connection, as a resync does: its subscribers
   * receive `opened` and a fresh snapshot (for "doc", the whole document). Sends
   * nothing when a re-open is already on its way, when not connected (connecting
   * re-opens all), or when `resource` (with that `where`) is not subscribed.
   */
  reopen(resource: string, options?: { where?: Where | null }): void;
  /** Close the connection for good: no reconnect follows. */
  close(): void;
}

/**
 * Open a LiveSocket.
 *
 * @param url a ws:// or wss:// URL, or a path on the page's host (default "/ws")
 */
export function connect(url?: string, options?: SocketOptions): LiveSocket;

/**
 * The page's shared LiveSocket, connected to the default URL ("/ws" on the page's host)
 * on first use (and again if it was closed).
 */
export function getSocket(): LiveSocket;

/**
 * One text per `where`, whatever the order of its keys: its JSON with the keys sorted,
 * as the server names a scope; `""` for none (undefined, null, `{}`).
 */
export function canonicalWhere(where: Where | null | undefined): string;

// #endregion
