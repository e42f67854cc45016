/**
 * Paintbrush shared stores: one live store per resource per socket, however many
 * components read it. liveResource (live.js) and liveDoc (doc.js) build their stores
 * through `sharedStore`; an application uses those and needs nothing from here.
 *
 *     import { signal } from "./signals.js";
 *     import { sharedStore } from "./stores.js";
 *
 *     // Every call for `name` on one socket gets the same signal and one subscription.
 *     function liveCount(socket, name) {
 *       const [store, release] = sharedStore(socket, `count:${name}`, () => {
 *         const count = signal(0);
 *         const dispose = socket.subscribe(name, () => count.set(count.peek() + 1));
 *         return { count, dispose };
 *       });
 *       return { count: store.count, dispose: release }; // unsubscribes after the last
 *     }
 *
 * The sharing is needed, not merely thrifty: the server sends a resource's snapshot
 * once, to the subscription that opened it (LiveSocket.subscribe shares one server
 * subscription between its subscribers). A second store of that resource on the same
 * socket would see only the events after it joined, and could never become ready.
 */

// #region Shared stores

/**
 * socket -> key -> the store and how many holders it has. Weak in the socket: a socket
 * nobody references any more takes its stores' bookkeeping with it, and socket.js
 * needs to know nothing about stores.
 *
 * @type {WeakMap<object, Map<string, {value: {dispose(): void}, refs: number}>>}
 */
const _stores = new WeakMap();

/**
 * The store for `key` on `socket`, shared by every caller that holds it: one live store
 * per resource per socket, so that two components reading the same resource share one
 * subscription (and its snapshot) instead of each opening its own.
 *
 * The store is reference-counted: `create()` builds it for the first holder, later
 * calls return the same value, and its `dispose()` runs when the last holder releases
 * it. A call after that builds a fresh one.
 *
 * Keys of every kind of store share one namespace per socket, so prefix them by kind
 * (liveResource uses `"resource:<name>"`, and `"resource:<name>?<canonical where>"` for a
 * scope; liveDoc `"doc"`).
 *
 * @template {{dispose(): void}} T
 * @param {object} socket  the socket the store reads (a LiveSocket)
 * @param {string} key  which store on that socket
 * @param {() => T} create  builds the store; called only when no holder has it
 * @returns {[T, () => void]} the store, and this holder's release (idempotent: a holder
 *   releasing twice must not drop another holder's reference)
 */
function sharedStore(socket, key, create) {
  let stores = _stores.get(socket);
  if (!stores) _stores.set(socket, (stores = new Map()));
  let entry = stores.get(key);
  if (!entry) stores.set(key, (entry = { value: create(), refs: 0 }));
  entry.refs++;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    if (--entry.refs) return;
    stores.delete(key);
    entry.value.dispose();
  };
  return [entry.value, release];
}

// #endregion

export { sharedStore };
