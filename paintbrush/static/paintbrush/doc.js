/**
 * Paintbrush role documents: the whole document of the signed-in user's role as one
 * signal, replaced by every push (docs/protocol.md, section 3).
 *
 *     import { getSocket } from "./socket.js";
 *     import { liveDoc } from "./doc.js";
 *     import { effect } from "./signals.js";
 *
 *     const { doc } = liveDoc(getSocket());
 *     effect(() => {
 *       const d = doc.get();
 *       if (d) console.log(d.role, d.orders.length);
 *     });
 */
import { batch, signal } from "./signals.js";
import { sharedStore } from "./stores.js";

/**
 * @typedef {object} LiveDoc
 * @property {import("./signals.js").ReadonlySignal<object | null>} doc  the document, null until the first push
 * @property {import("./signals.js").ReadonlySignal<boolean>} ready  true once a document arrived
 * @property {import("./signals.js").ReadonlySignal<object | null>} error  the last server error about "doc"
 * @property {() => void} dispose  stop (the subscription closes when no one else on the socket uses it)
 */

/**
 * Subscribe to the reserved resource "doc". Calls on the same socket share one signal,
 * since only the first subscriber gets the current document when it opens.
 *
 * @param {{subscribe(resource: string, handler: (message: any) => void): () => void}} socket
 *   a LiveSocket (see socket.js)
 * @returns {LiveDoc}
 */
function liveDoc(socket) {
  const [store, release] = sharedStore(socket, "doc", () => _createDoc(socket));
  return { doc: store.doc, ready: store.ready, error: store.error, dispose: release };
}

function _createDoc(socket) {
  const doc = signal(null);
  const ready = signal(false);
  const error = signal(null);
  const dispose = socket.subscribe("doc", (message) => {
    if (message.type === "doc") {
      batch(() => {
        doc.set(message.doc);
        ready.set(true);
      });
    } else if (message.type === "error") {
      error.set(message);
      console.warn(`paintbrush: doc: ${message.error}: ${message.message}`);
    }
  });
  return { doc, ready, error, dispose };
}

export { liveDoc };
