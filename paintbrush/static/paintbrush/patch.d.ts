/**
 * Declarations of patch.js: RFC 6902 JSON Patch applied without mutating the document,
 * for the document patches of protocol v1.2 (docs/protocol.md, section 2c).
 *
 *     const after = applyPatch(before, [{ op: "replace", path: "/orders/0/status", value: "paid" }]);
 *     after.products === before.products;             // only the changed paths are copied
 */

/** A JSON Pointer (RFC 6901): "" for the whole document, else "/"-separated tokens, `~0` for "~" and `~1` for "/". */
export type JsonPointer = string;

/** One operation of a JSON Patch (RFC 6902). */
export type PatchOperation =
  | { op: "add"; path: JsonPointer; value: unknown }
  | { op: "remove"; path: JsonPointer }
  | { op: "replace"; path: JsonPointer; value: unknown }
  | { op: "move"; from: JsonPointer; path: JsonPointer }
  | { op: "copy"; from: JsonPointer; path: JsonPointer }
  | { op: "test"; path: JsonPointer; value: unknown };

/** An operation could not be applied (the patch is then void). */
export class PatchError extends Error {
  constructor(message: string, index: number, operation: unknown);
  /** The operation's position in the patch (-1: the patch itself is malformed). */
  index: number;
  /** The operation as given. */
  operation: unknown;
}

/**
 * Apply a JSON Patch (RFC 6902: add, remove, replace, move, copy, test) to `document`,
 * returning the new document. The input is not mutated; only the objects and arrays on
 * the paths of changed values are copied (each at most once per call), everything else
 * is shared with the input (`===`). A patch that changes nothing returns `document`.
 *
 * @throws PatchError when an operation cannot be applied (a missing path, a failed test)
 */
export function applyPatch<T>(document: T, ops: readonly PatchOperation[]): T;
