/**
 * Paintbrush JSON Patch: RFC 6902 applied to a JSON document without mutating it, for
 * the document patches of protocol v1.2 (docs/protocol.md, section 2c).
 *
 *     import { applyPatch } from "./patch.js";
 *
 *     const before = { orders: [{ id: 1, status: "pending" }], products: [{ id: 7 }] };
 *     const after = applyPatch(before, [{ op: "replace", path: "/orders/0/status", value: "paid" }]);
 *     after.orders !== before.orders;                 // on the changed path: copied
 *     after.products === before.products;             // elsewhere: the same objects
 *
 * The result shares structure with its input: only the objects and arrays on the paths
 * of changed values are copied, and everything else keeps its identity. That is what
 * makes a patch cheap to show: a computed that reads one part of the document (and the
 * effect that renders it) sees the very same value when the patch changed another part,
 * so it stops there (signals.js compares with `Object.is`).
 *
 * Each container is copied at most once per call, however many operations touch it: the
 * copies made by this call are its own, and later operations change them in place. The
 * one exception is `copy`, which puts one value in two places: a copy of this call that
 * it shares is given up, so that changing one place cannot change the other (a later
 * operation under either copies it again).
 *
 * An operation that cannot be applied (a path that does not exist, a failed `test`, a
 * malformed operation) throws a PatchError and the whole patch is void: the input is
 * untouched, and nothing of the operations before it is returned. Patches come from the
 * server, so that means the client is out of step: liveDoc opens the document again.
 */

// #region Public API

/**
 * An operation could not be applied; `index` says which one.
 */
class PatchError extends Error {
  /**
   * @param {string} message
   * @param {number} index  the operation's position in the patch (-1: the patch itself)
   * @param {unknown} operation  the operation as given
   */
  constructor(message, index, operation) {
    super(message);
    this.name = "PatchError";
    /** @type {number} */
    this.index = index;
    /** @type {unknown} */
    this.operation = operation;
  }
}

/**
 * Apply a JSON Patch (RFC 6902: add, remove, replace, move, copy, test) to `document`,
 * returning the new document. The input is not mutated; the result shares every object
 * and array the patch did not change with it (see the module's comment). A patch that
 * changes nothing (empty, or only tests) returns `document` itself.
 *
 * @template T
 * @param {T} document  a JSON value
 * @param {ReadonlyArray<object>} ops  the operations, applied in order
 * @returns {T}
 * @throws {PatchError} when an operation cannot be applied (the patch is then void)
 */
function applyPatch(document, ops) {
  if (!Array.isArray(ops)) throw new PatchError("a JSON Patch is an array of operations", -1, ops);
  const state = { root: document, owned: new Set() };
  ops.forEach((op, index) => {
    try {
      _apply(state, op);
    } catch (err) {
      if (!(err instanceof _Failure)) throw err;
      const name = op && typeof op === "object" ? `${op.op} ${JSON.stringify(op.path)}` : JSON.stringify(op);
      throw new PatchError(`operation ${index} (${name}): ${err.message}`, index, op);
    }
  });
  return /** @type {T} */ (state.root);
}

// #endregion
// #region Operations

/** Why an operation failed; applyPatch names the operation and throws a PatchError. */
class _Failure extends Error {}

/**
 * The state of one applyPatch call: the document so far, and the containers this call
 * copied. Those are reachable only through other owned containers (a copy is put only
 * into a parent that is owned already), so changing them in place changes nothing the
 * caller holds.
 *
 * @typedef {{root: unknown, owned: Set<object>}} _State
 */

/** @param {_State} state */
function _apply(state, op) {
  if (!op || typeof op !== "object" || Array.isArray(op)) throw new _Failure("an operation is an object");
  const path = _pointer(op, "path");
  switch (op.op) {
    case "add":
      _add(state, path, _value(op));
      break;
    case "remove":
      _remove(state, path);
      break;
    case "replace":
      _replace(state, path, _value(op));
      break;
    case "move": {
      const from = _pointer(op, "from");
      if (_isPrefix(from, path)) {
        // Also checks that `from` exists: moving a value to where it is changes nothing.
        if (from.length === path.length) _get(state.root, from);
        else throw new _Failure("cannot move a value into itself");
        break;
      }
      _add(state, path, _remove(state, from));
      break;
    }
    case "copy": {
      const value = _get(state.root, _pointer(op, "from"));
      _disown(state, value); // it will be in two places now
      _add(state, path, value);
      break;
    }
    case "test":
      if (!_equal(_get(state.root, path), _value(op))) throw new _Failure("the test failed");
      break;
    default:
      throw new _Failure(`unknown op ${JSON.stringify(op.op)}`);
  }
}

function _add(state, path, value) {
  if (!path.length) {
    state.root = value;
    return;
  }
  const parent = _parentOf(state, path);
  const token = path[path.length - 1];
  if (Array.isArray(parent)) {
    // "-" is the end of the array; an index may also be the length itself (append).
    const index = token === "-" ? parent.length : _index(token, parent.length + 1);
    parent.splice(index, 0, value);
  } else {
    _set(parent, token, value);
  }
}

function _remove(state, path) {
  if (!path.length) throw new _Failure("cannot remove the whole document");
  const parent = _parentOf(state, path);
  const token = path[path.length - 1];
  if (Array.isArray(parent)) return parent.splice(_index(token, parent.length), 1)[0];
  if (!Object.hasOwn(parent, token)) throw new _Failure("the path does not exist");
  const value = parent[token];
  delete parent[token];
  return value;
}

function _replace(state, path, value) {
  if (!path.length) {
    state.root = value;
    return;
  }
  const parentBefore = _get(state.root, path.slice(0, -1));
  const token = path[path.length - 1];
  const key = _key(parentBefore, token);
  // Setting a number, string, boolean or null to what it is changes nothing: copying
  // its containers would only make the views that read them render again.
  if (Object.is(parentBefore[key], value)) return;
  _set(_parentOf(state, path), key, value);
}

// #endregion
// #region Paths

/** The operation's `field` ("path" or "from") as JSON Pointer tokens (RFC 6901). */
function _pointer(op, field) {
  const pointer = op[field];
  if (typeof pointer !== "string") throw new _Failure(`"${field}" must be a string`);
  if (pointer === "") return [];
  if (pointer[0] !== "/") throw new _Failure(`"${field}" must be "" or start with "/"`);
  return pointer.slice(1).split("/").map((token) => {
    if (/~(?![01])/.test(token)) throw new _Failure(`"${field}" has a "~" not followed by 0 or 1`);
    // ~1 first: "~01" is the token "~1", not "/".
    return token.replace(/~1/g, "/").replace(/~0/g, "~");
  });
}

function _value(op) {
  if (!("value" in op)) throw new _Failure('"value" is missing');
  return op.value;
}

/** Whether pointer `a` is `b` or one of its ancestors. */
function _isPrefix(a, b) {
  return a.length <= b.length && a.every((token, i) => token === b[i]);
}

/** The value at `path`, which must exist. */
function _get(root, path) {
  let node = root;
  for (const token of path) node = node[_key(node, token)];
  return node;
}

/**
 * The container holding the value at `path`, made this call's own: every container
 * from the root down to it is copied, unless this call copied it already.
 *
 * @param {_State} state
 */
function _parentOf(state, path) {
  if (!_isContainer(state.root)) throw new _Failure("the path does not exist");
  state.root = _own(state, state.root);
  let node = /** @type {any} */ (state.root);
  for (const token of path.slice(0, -1)) {
    const key = _key(node, token);
    const child = node[key];
    if (!_isContainer(child)) throw new _Failure("the path does not exist");
    const mine = _own(state, child);
    if (mine !== child) _set(node, key, mine);
    node = mine;
  }
  return node;
}

/** The key of an existing member or element `token` of `node`. */
function _key(node, token) {
  if (!_isContainer(node)) throw new _Failure("the path does not exist");
  if (Array.isArray(node)) return _index(token, node.length);
  if (!Object.hasOwn(node, token)) throw new _Failure("the path does not exist");
  return token;
}

/** An array index below `end`: digits without leading zeros ("-" is never one here). */
function _index(token, end) {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new _Failure(`${JSON.stringify(token)} is not an array index`);
  const index = Number(token);
  if (index >= end) throw new _Failure(`index ${index} is out of bounds`);
  return index;
}

// #endregion
// #region Values

function _isContainer(value) {
  return value !== null && typeof value === "object";
}

/** `value` if this call copied it, else its copy, which the call then owns. @param {_State} state */
function _own(state, value) {
  if (state.owned.has(value)) return value;
  const copy = Array.isArray(value) ? value.slice() : { ...value };
  state.owned.add(copy);
  return copy;
}

/**
 * Give up this call's ownership of `value` and of every owned container in it (owned
 * ones are reachable only through owned ones, so the walk stops at any other).
 *
 * @param {_State} state
 */
function _disown(state, value) {
  if (!_isContainer(value) || !state.owned.delete(value)) return;
  for (const child of Object.values(value)) _disown(state, child);
}

/** Set a member, as an own property even for "__proto__" (which `=` would not make). */
function _set(node, key, value) {
  if (key === "__proto__") {
    Object.defineProperty(node, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    node[key] = value;
  }
}

/** JSON equality, as `test` compares: arrays in order, objects whatever their key order. */
function _equal(a, b) {
  if (a === b) return true;
  if (!_isContainer(a) || !_isContainer(b) || Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((item, i) => _equal(item, b[i]));
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && _equal(a[k], b[k]));
}

// #endregion

export { PatchError, applyPatch };
