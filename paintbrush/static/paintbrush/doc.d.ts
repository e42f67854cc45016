/**
 * Declarations of doc.js: the whole document of the signed-in user's role as one
 * signal, replaced by every push (docs/protocol.md, section 3).
 *
 *     import type { RoleDocument } from "./resources.js";   // python manage.py paintbrush_types
 *
 *     const { doc } = liveDoc<RoleDocument>(getSocket());
 *     effect(() => { const d = doc.get(); if (d) console.log(d.role); });
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
  /** Stop (the subscription closes when no one else on the socket uses it). */
  dispose: () => void;
}

/**
 * Subscribe to the reserved resource "doc". Calls on the same socket share one signal,
 * since only the first subscriber gets the current document when it opens.
 *
 * @param socket a LiveSocket (see socket.js)
 */
export function liveDoc<D extends { role: string } = RoleDocumentBase>(socket: SubscribableSocket): LiveDoc<D>;
