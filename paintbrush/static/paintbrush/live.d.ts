/**
 * Declarations of live.js: a resource's rows as signals, kept equal to the server's by
 * the events and snapshots of the socket (docs/protocol.md, section 2).
 *
 *     import type { Todo } from "./resources.js";     // python manage.py paintbrush_types
 *
 *     const todos = liveResource<Todo>(getSocket(), "todos");
 *     effect(() => { console.log(todos.ready.get() ? `${todos.items.get().size} todos` : "loading"); });
 *     todos.dispose();
 *
 *     const room = liveResource<Message>(getSocket(), "messages", { where: { room: 3 }, last: 50 });
 *     await room.loadEarlier();                        // the 50 before the oldest held
 */
import type { ReadonlySignal, Signal } from "./signals.js";
import type { ClosedMessage, ErrorMessage, SubscribableSocket, Where } from "./socket.js";

/** An item of a live resource: its id, its version and its fields. */
export interface Item {
  id: string | number;
  version: number;
  [field: string]: unknown;
}

/** One row's signal: it changes only when that row's fields change. */
export type ItemSignal<T = Item> = Signal<T>;

export interface LiveResource<T = Item> {
  /** The rows by id; the outer signal changes on membership, each row's signal on its fields. */
  items: ReadonlySignal<Map<string | number, ItemSignal<T>>>;
  /** True once a first snapshot was applied. */
  ready: ReadonlySignal<boolean>;
  /**
   * The last server error about this resource (or scope), or the `closed` frame by
   * which the server ended it (reason `forbidden`: the user lost access; the rows are
   * then cleared and the store takes nothing more).
   */
  error: ReadonlySignal<ErrorMessage | ClosedMessage | null>;
  /**
   * True once the rows held reach the scope's first, with no gap: at once with a
   * snapshot that is not windowed or says `complete`, else once `loadEarlier` got fewer
   * rows than the window.
   */
  complete: ReadonlySignal<boolean>;
  /**
   * `GET /api/<name>?<where>&last=<last>&before=<the oldest row held>` (or before the
   * oldest row above a gap a windowed snapshot left), applied by version, deleting
   * nothing. Resolves to how many rows it added; to 0 without a request when `complete`
   * (or with no window). A call while one is in flight returns its promise. Rejects
   * with the ApiError of a failed request.
   */
  loadEarlier(): Promise<number>;
  /** Stop (the subscription closes when no one else on the socket uses it). */
  dispose: () => void;
}

export interface LiveResourceOptions<T = Item> {
  /** A scope, e.g. `{ room: 3 }` (protocol v1.2, section 2b). */
  where?: Where;
  /** A window: the snapshot holds the scope's last `last` rows; `loadEarlier` reads as many. */
  last?: number;
  /**
   * The resource's order, as `Array.prototype.sort` takes it (default: by `created_at`,
   * then `id`). A row a windowed snapshot does not list stays if it sorts before the
   * snapshot's first row.
   */
  order?: (a: T, b: T) => number;
}

/**
 * Subscribe to a notified resource, or a scope of one, and keep its rows as signals.
 * Calls for the same resource and `where` on the same socket share one store (and one
 * server subscription); the first call's `last` and `order` are the store's.
 *
 * @param socket a LiveSocket (see socket.js)
 * @param name the resource, e.g. "todos"
 */
export function liveResource<T extends { id: string | number } = Item>(
  socket: SubscribableSocket,
  name: string,
  options?: LiveResourceOptions<T>,
): LiveResource<T>;
