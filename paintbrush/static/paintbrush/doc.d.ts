/**
 * Declarations of doc.js: the whole document of the signed-in user's role as one
 * signal, kept equal to the server's by its pushes (docs/protocol.md, section 3), whole
 * or, with `patch`, as JSON Patches (protocol v1.2, section 2c).
 *
 *     import type { RoleDocument } from "./resources.js";   // python manage.py paintbrush_types
 *
 *     const { doc } = liveDoc<RoleDocument>(getSocket());
 *     effect(() => { const d = doc.get(); if (d) console.log(d.role); });
 *
 *     const { doc: patched, rev } = liveDoc<RoleDocument>(getSocket(), { patch: true });
 *     const products = computed(() => patched.get()?.products);  // same value while they did not change
 */
import type { ReadonlySignal } from "./signals.js";
import type { ErrorMessage, RoleDocumentBase, SubscribableSocket } from "./socket.js";

export interface LiveDoc<D = RoleDocumentBase> {
  /** The document, null until the first push. */
  doc: ReadonlySignal<D | null>;
  /** True once a document arrived. */
  ready: ReadonlySignal<boolean>;
  /** The last server error about "doc". */
  error: ReadonlySignal<ErrorMessage | null>;
  /**
   * The revision of the document held (with patches); null while none is known, and
   * always without patches (v1 documents have none).
   */
  rev: ReadonlySignal<number | null>;
  /** Stop (the subscription closes when no one else on the socket uses it). */
  dispose: () => void;
}

export interface LiveDocOptions {
  /**
   * Receive the document's changes as JSON Patches rather than the whole document at
   * every push (protocol v1.2, section 2c). Applied with structural sharing: the parts a
   * patch did not change keep their identity. The socket must be able to `reopen`.
   */
  patch?: boolean;
}

/**
 * Subscribe to the reserved resource "doc". Calls on the same socket share one store,
 * since only the first subscriber gets the current document when it opens: the first
 * call decides whether the socket asks for patches, and later calls share its store
 * whatever they ask (the document held is the same either way).
 *
 * A patch applies only to the revision just before it; on a gap, or a patch that does
 * not apply, the store asks for the whole document again (`socket.reopen("doc")`).
 *
 * @param socket a LiveSocket (see socket.js)
 * @throws TypeError with `patch`, when the socket has no `reopen`
 */
export function liveDoc<D extends { role: string } = RoleDocumentBase>(
  socket: SubscribableSocket,
  options?: LiveDocOptions,
): LiveDoc<D>;
