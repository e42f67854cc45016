/**
 * Declarations of stores.js: one live store per resource per socket, reference-counted,
 * which liveResource and liveDoc build theirs with.
 *
 *     const [store, release] = sharedStore(socket, `count:${name}`, () => {
 *       const count = signal(0);
 *       return { count, dispose: socket.subscribe(name, () => count.set(count.peek() + 1)) };
 *     });
 *     release();                                       // store.dispose() after the last release
 */

/**
 * The store for `key` on `socket`, shared by every caller that holds it: one live store
 * per resource per socket, so that two components reading the same resource share one
 * subscription (and its snapshot; a second subscriber of a resource gets none of its
 * own, so a store of its own could never become ready).
 *
 * `create()` builds the store for the first holder; its `dispose()` runs when the last
 * holder releases it, and a call after that builds a fresh one. Keys of every kind of
 * store share one namespace per socket: prefix them by kind (`"resource:<name>"`).
 *
 * @param socket the socket the store reads (a LiveSocket)
 * @param key which store on that socket
 * @param create builds the store; called only when no holder has it
 * @returns the store, and this holder's release (idempotent)
 */
export function sharedStore<T extends { dispose(): void }>(
  socket: object,
  key: string,
  create: () => T,
): [store: T, release: () => void];
