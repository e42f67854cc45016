/**
 * Declarations of live.js: a resource's rows as signals, kept equal to the server's by
 * the events and snapshots of the socket (docs/protocol.md, section 2).
 *
 *     import type { Todo } from "./resources.js";     // python manage.py paintbrush_types
 *
 *     const todos = liveResource<Todo>(getSocket(), "todos");
 *     effect(() => { console.log(todos.ready.get() ? `${todos.items.get().size} todos` : "loading"); });
 *     todos.dispose();
 */
import type { ReadonlySignal, Signal } from "./signals.js";
import type { ErrorMessage, SubscribableSocket } from "./socket.js";

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
  /** The last server error about this resource. */
  error: ReadonlySignal<ErrorMessage | null>;
  /** Stop (the subscription closes when no one else on the socket uses it). */
  dispose: () => void;
}

/**
 * Subscribe to a notified resource and keep its rows as signals. Calls for the same
 * resource on the same socket share one store (and one server subscription).
 *
 * @param socket a LiveSocket (see socket.js)
 * @param name the resource, e.g. "todos"
 */
export function liveResource<T extends { id: string | number } = Item>(
  socket: SubscribableSocket,
  name: string,
): LiveResource<T>;
