/**
 * Paintbrush role documents: the whole document of the signed-in user's role as one
 * signal, kept equal to the server's by its pushes (docs/protocol.md, section 3).
 *
 *     import { getSocket } from "./socket.js";
 *     import { liveDoc } from "./doc.js";
 *     import { computed, effect } from "./signals.js";
 *
 *     const { doc } = liveDoc(getSocket());
 *     effect(() => {
 *       const d = doc.get();
 *       if (d) console.log(d.role, d.orders.length);
 *     });
 *
 * With `{patch: true}` (protocol v1.2, section 2c) the server sends the document once,
 * with a revision, and then mostly its changes, as JSON Patches. They are applied with
 * structural sharing (patch.js): what a patch did not change keeps its identity, so a
 * computed that reads one part of the document stops there when another part changed,
 * and so does the effect that renders it:
 *
 *     const { doc, rev } = liveDoc(getSocket(), { patch: true });
 *     const products = computed(() => doc.get()?.products);
 *     effect(() => render(products.get()));           // not run again for an order's change
 *
 * A patch applies only to the revision just before it. On a gap (a push lost on the
 * way, or a patch before any whole document), or a patch that cannot be applied, the
 * store asks for the document again (LiveSocket.reopen) and ignores patches until the
 * whole document arrives; a whole document always replaces what is held.
 */
import { applyPatch } from "./patch.js";
import { batch, signal } from "./signals.js";
import { sharedStore } from "./stores.js";

/**
 * @typedef {object} LiveDoc
 * @property {import("./signals.js").ReadonlySignal<object | null>} doc  the document, null until the first push
 * @property {import("./signals.js").ReadonlySignal<boolean>} ready  true once a document arrived
 * @property {import("./signals.js").ReadonlySignal<object | null>} error  the last server error about "doc"
 * @property {import("./signals.js").ReadonlySignal<number | null>} rev  the revision of the document
 *   held (with patches), null while none is known (and always without patches: v1 has none)
 * @property {() => void} dispose  stop (the subscription closes when no one else on the socket uses it)
 */

/**
 * @typedef {object} LiveDocOptions
 * @property {boolean} [patch]  receive the document's changes as JSON Patches rather than
 *   the whole document at every push (protocol v1.2, section 2c)
 */

/**
 * Subscribe to the reserved resource "doc". Calls on the same socket share one store,
 * since only the first subscriber gets the current document when it opens.
 *
 * So the first call decides whether the socket asks for patches, and a later call
 * shares its store whatever it asks: the frames of "doc" name no subscription, so a
 * socket holds one, in one form. Either way the store holds the same document (it
 * applies whole documents and patches alike); `patch` only makes the pushes smaller
 * and the document's unchanged parts keep their identity.
 *
 * @param {{subscribe(resource: string, handler: (message: any) => void, options?: object): () => void,
 *   reopen?(resource: string): void}} socket  a LiveSocket (see socket.js); with `patch`,
 *   one that can `reopen`
 * @param {LiveDocOptions} [options]
 * @returns {LiveDoc}
 */
function liveDoc(socket, options = {}) {
  const patch = options.patch === true;
  if (patch && typeof socket.reopen !== "function") {
    throw new TypeError("liveDoc: with patch, the socket must be able to reopen the document (a LiveSocket).");
  }
  const [store, release] = sharedStore(socket, "doc", () => _createDoc(socket, patch));
  return { doc: store.doc, ready: store.ready, error: store.error, rev: store.rev, dispose: release };
}

function _createDoc(socket, patch) {
  const doc = signal(null);
  const ready = signal(false);
  const error = signal(null);
  const rev = signal(null);
  // A gap was seen and the document asked for again: patches until it comes are of a
  // revision this store cannot hold, so they are ignored, not each a re-open of its own.
  let stale = false;

  const outOfStep = (why) => {
    if (stale) return;
    stale = true;
    console.warn(`paintbrush: doc: ${why}; opening it again`);
    socket.reopen?.("doc");
  };

  const receivePatch = (message) => {
    if (stale) return;
    const held = rev.peek();
    if (held === null || message.rev !== held + 1) {
      outOfStep(`a patch to revision ${message.rev} while holding ${held ?? "none"}`);
      return;
    }
    let next;
    try {
      next = applyPatch(doc.peek(), message.patch);
    } catch (err) {
      outOfStep(`the patch to revision ${message.rev} does not apply (${err.message})`);
      return;
    }
    batch(() => {
      doc.set(next);
      rev.set(message.rev);
    });
  };

  const dispose = socket.subscribe("doc", (message) => {
    if (message.type === "doc") {
      if (message.doc === undefined) {
        receivePatch(message);
        return;
      }
      // A whole document, from a push or a re-open: it replaces whatever is held.
      stale = false;
      batch(() => {
        doc.set(message.doc);
        rev.set(typeof message.rev === "number" ? message.rev : null);
        ready.set(true);
      });
    } else if (message.type === "error") {
      error.set(message);
      console.warn(`paintbrush: doc: ${message.error}: ${message.message}`);
    }
  }, patch ? { patch: true } : undefined);
  return { doc, ready, error, rev, dispose };
}

export { liveDoc };
