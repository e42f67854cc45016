/**
 * Paintbrush live resources: a resource's rows as signals, kept equal to the server's
 * by the events and snapshots of the socket (docs/protocol.md, section 2).
 *
 *     import { getSocket } from "./socket.js";
 *     import { liveResource } from "./live.js";
 *     import { effect } from "./signals.js";
 *
 *     const todos = liveResource(getSocket(), "todos");
 *     effect(() => console.log(todos.ready.get() ? `${todos.items.get().size} todos` : "loading"));
 *     // todos.items.get().get(id).get() is one todo: {id, title, done, ..., version}
 *     todos.dispose();
 *
 * `items` is a `Signal<Map<id, Signal<item>>>`: the outer signal changes only when rows
 * come or go, and a row's own signal only when that row's fields change, so a view
 * re-renders exactly the row that changed.
 *
 * Events of one row may arrive out of order, so they are applied by version, never by
 * arrival: per row the store keeps the version at which each field was last set, and
 * sets a field only from something newer. Deletes leave tombstones, updates that
 * overtake their row's create wait for it, and a snapshot says which rows exist.
 * Whatever the order of arrival, the rows end up as the database has them.
 *
 * A snapshot may come split over several frames (all but the last with `more: true`);
 * the store collects them and applies them as one, so no row flickers out and back.
 *
 * Scopes and windows (protocol v1.2, section 2b): a store may hold one scope of a
 * resource, and only its latest rows, loading older ones on demand:
 *
 *     const room = liveResource(getSocket(), "messages", { where: { room: 3 }, last: 50 });
 *     await room.loadEarlier();                        // the 50 before the oldest held
 *     effect(() => console.log(room.complete.get() ? "the room's start" : "more above"));
 *
 * A windowed snapshot lists the scope's last N rows only, so a row it does not list was
 * deleted only if it sorts after the snapshot's first row: rows before it (loaded by
 * `loadEarlier`, or held from an earlier, larger window) stay. "Sorts" is the resource's
 * order, which the client knows by the `order` option (default: by `created_at`, then
 * `id`, the demo's messages' order); the snapshot's first row is the first the server
 * listed (it sends them in its order).
 *
 * Keeping those rows can leave a gap: back after a long disconnect, the store holds its
 * old rows and the new window, not what was written in between. The store notes where
 * such a gap may be (the window's first row, when it did not hold that row before), and
 * `loadEarlier` fills the newest gap first, reading before the oldest row above it, until
 * a page reaches the rows below it; then it goes on from the oldest row held. `complete`
 * is true only when no gap is left and the rows reach the scope's first.
 */
import { canonicalWhere } from "./socket.js";
import { listItems } from "./rest.js";
import { batch, signal } from "./signals.js";
import { sharedStore } from "./stores.js";

// #region Public API

/**
 * @typedef {{id: string | number, version: number, [field: string]: unknown}} Item
 * @typedef {import("./signals.js").Signal<Item>} ItemSignal
 */

/**
 * @typedef {object} LiveResource
 * @property {import("./signals.js").ReadonlySignal<Map<string | number, ItemSignal>>} items
 *   the rows by id; the outer signal changes on membership, each row's signal on its fields
 * @property {import("./signals.js").ReadonlySignal<boolean>} ready  true once a first snapshot was applied
 * @property {import("./signals.js").ReadonlySignal<object | null>} error  the last server error about
 *   this resource (or scope), or the `closed` frame by which the server ended it
 * @property {import("./signals.js").ReadonlySignal<boolean>} complete  true once the rows held reach the
 *   scope's first (at once with a snapshot that is not windowed, or says `complete`), with no gap
 * @property {() => Promise<number>} loadEarlier  read the window before the oldest row held
 *   (or before a gap), by REST; resolves to how many rows it added
 * @property {() => void} dispose  stop (the subscription closes when no one else on the socket uses it)
 */

/**
 * @typedef {object} LiveResourceOptions
 * @property {Record<string, unknown>} [where]  a scope, e.g. `{room: 3}` (protocol section 2b)
 * @property {number} [last]  a window: the snapshot holds the scope's last `last` rows, and
 *   `loadEarlier` reads `last` more at a time
 * @property {(a: Item, b: Item) => number} [order]  the resource's order, as `Array.sort` takes
 *   it (default: by `created_at`, then `id`); a windowed snapshot needs it
 */

/**
 * Subscribe to a notified resource, or a scope of one, and keep its rows as signals.
 * Calls for the same resource and `where` (in any key order) on the same socket share
 * one store and one server subscription; the first call's `last` and `order` are the
 * store's.
 *
 * When the server ends the subscription (`closed` with reason `forbidden`: the user
 * lost access to the scope), `error` holds that frame, `ready` stays as it was, the rows
 * are cleared (the user may no longer read them, and nothing would keep them current)
 * and the store takes nothing more. Dispose it; a new call subscribes afresh.
 *
 * @param {{subscribe(resource: string, handler: (message: any) => void, options?: object): () => void}} socket
 *   a LiveSocket (see socket.js)
 * @param {string} name  the resource, e.g. "todos"
 * @param {LiveResourceOptions} [options]
 * @returns {LiveResource}
 */
function liveResource(socket, name, options = {}) {
  const { where, last, order = _byCreatedAt } = options;
  if (where != null && (typeof where !== "object" || Array.isArray(where))) {
    throw new TypeError(`liveResource: where is an object of field names and values, e.g. {room: 3}, not ${JSON.stringify(where)}.`);
  }
  if (last != null && !(Number.isInteger(last) && last > 0)) {
    throw new TypeError(`liveResource: last is a count of rows (an integer from 1), not ${JSON.stringify(last)}.`);
  }
  if (typeof order !== "function") throw new TypeError("liveResource: order is a function (a, b) => number, as Array.sort takes.");
  const scope = canonicalWhere(where);
  const key = scope ? `resource:${name}?${scope}` : `resource:${name}`;
  // The store keeps the where as the socket sends it (keys sorted), and a copy of its own.
  const scoped = scope ? JSON.parse(scope) : undefined;
  const [store, release] = sharedStore(socket, key, () => _createStore(socket, name, scoped, last ?? null, order));
  const { items, ready, error, complete, loadEarlier } = store;
  return { items, ready, error, complete, loadEarlier, dispose: release };
}

export { liveResource };

// #endregion
// #region Store

/**
 * What the store knows of one row. It outlives the row's membership: a tombstone or
 * held updates are kept for a row that is not shown.
 *
 * @typedef {object} _Row
 * @property {ItemSignal | null} signal  the row's signal while it is shown
 * @property {Map<string, number>} setAt  field -> version at which it was last set
 * @property {number} version  the highest version applied while shown
 * @property {number} tomb  at or below this version, nothing about the row applies (0: none)
 * @property {Array<[Record<string, unknown>, number]>} held  updates that came before the row
 */

function _createStore(socket, name, where, last, order) {
  const items = signal(new Map());
  const ready = signal(false);
  const error = signal(null);
  const complete = signal(false);
  /** @type {Map<string | number, _Row>} every row heard of, shown or not */
  const rows = new Map();
  // The new membership Map, copied on the first add or remove of a message and set once
  // at its end: a snapshot of a thousand rows is one outer change, not a thousand.
  let members = null;
  const editMembers = () => (members ??= new Map(items.peek()));
  /**
   * A split snapshot being collected, null when none is: its frames so far, and the
   * rows that events touched meanwhile.
   * @type {{frames: Array<any>, touched: Set<string | number>} | null}
   */
  let collecting = null;
  // The window's bookkeeping (see the module's docstring). `reachedStart`: the rows held
  // go back to the scope's first. `gaps`: where rows may be missing, oldest first, each
  // as the item that was the oldest row above the gap (compared by `order`, so it holds
  // whether or not that row is still shown).
  let reachedStart = false;
  /** @type {Item[]} */
  let gaps = [];
  /** @type {Promise<number> | null} the loadEarlier in flight */
  let loading = null;
  // The server ended the subscription: nothing applies any more.
  let stopped = false;

  const rowOf = (id) => {
    let row = rows.get(id);
    if (!row) rows.set(id, (row = { signal: null, setAt: new Map(), version: 0, tomb: 0, held: [] }));
    return row;
  };

  const hide = (id, row) => {
    row.signal = null;
    row.setAt = new Map();
    row.version = 0;
    editMembers().delete(id);
  };

  /** A create's item or a snapshot's: the row exists at `version` with these fields. */
  const arrive = (item, version) => {
    if (item?.id == null) return;
    const row = rowOf(item.id);
    if (!(version > row.tomb)) return;
    if (row.signal) {
      // Already shown: keep its signal (and so its DOM), take only what is newer.
      const next = { ...row.signal.peek() };
      if (_merge(row, next, item, version)) row.signal.set(next);
      return;
    }
    const next = { id: item.id };
    _merge(row, next, item, version);
    for (const [fields, heldVersion] of row.held) _merge(row, next, fields, heldVersion);
    row.held = [];
    row.signal = signal(next);
    editMembers().set(item.id, row.signal);
  };

  const update = (id, fields, version) => {
    if (id == null) return;
    const row = rowOf(id);
    if (!(version > row.tomb)) return;
    if (!row.signal) {
      // Not shown without the row's other fields: wait for its create or a snapshot.
      row.held.push([fields, version]);
      return;
    }
    const next = { ...row.signal.peek() };
    if (_merge(row, next, fields, version)) row.signal.set(next);
  };

  const remove = (id, version) => {
    if (id == null) return;
    const row = rowOf(id);
    if (!(version > row.tomb)) return;
    row.tomb = version;
    row.held = row.held.filter(([, heldVersion]) => heldVersion > version);
    // A row shown at a version above the delete was brought back after it.
    if (row.signal && row.version < version) hide(id, row);
  };

  /** The rows shown, as items (members as this message has made them so far). */
  const shownItems = () => [...(members ?? items.peek()).values()].map((row) => row.peek());

  /** The newest of `list` by `order` that sorts before `bound`, or null. */
  const newestBefore = (list, bound) => {
    let newest = null;
    for (const item of list) {
      if (order(item, bound) < 0 && (!newest || order(item, newest) > 0)) newest = item;
    }
    return newest;
  };

  const settleComplete = () => complete.set(reachedStart && !gaps.length);

  /**
   * Apply a whole snapshot. `touched` are rows that events brought while its frames
   * were arriving: such an event may be newer than the frame that would have listed
   * the row, so its absence from the snapshot does not mean it was deleted (a delete
   * would come as an event of its own, since the subscription was open).
   *
   * `windowed`: the snapshot lists only the scope's last rows (it carries `last` and
   * not `complete`): then a row it does not list is dropped only if it does not sort
   * before the snapshot's first row (protocol section 2b).
   */
  const snapshot = (list, touched, windowed) => {
    const first = windowed ? list.find((item) => item?.id != null) : undefined;
    const firstWasShown = first !== undefined && rows.get(first.id)?.signal != null;
    const listed = new Set();
    for (const item of list) {
      listed.add(item?.id);
      arrive(item, item?.version);
    }
    // Of a window, the rows sorting before its first row stay (an empty window has no
    // first row, and so no row sorts after it: all stay).
    const stays = (item) => windowed && (first === undefined || order(item, first) < 0);
    for (const [id, row] of rows) {
      if (row.signal && !listed.has(id) && !touched?.has(id) && !stays(row.signal.peek())) {
        // Deleted while we were not listening, at a version we never saw but above the
        // one we hold: a late event at or below it (say its create) must not revive it.
        row.tomb = Math.max(row.tomb, row.version);
        hide(id, row);
      }
      if (!row.signal && !row.tomb && !row.held.length) rows.delete(id);
    }
    if (!windowed) {
      // Every row of the scope is listed: the store holds it all.
      reachedStart = true;
      gaps = [];
    } else if (first !== undefined) {
      // The snapshot holds its first row onward, so the gaps above the newest row kept
      // below it are filled; between that row and the first one, rows may be missing
      // unless the two were held together before (the first row was shown, no gap
      // between them).
      const below = newestBefore(shownItems(), first);
      if (!below) {
        reachedStart = false;
        gaps = [];
      } else {
        const filled = gaps.filter((gap) => order(gap, below) > 0);
        gaps = gaps.filter((gap) => order(gap, below) <= 0);
        if (!firstWasShown || filled.some((gap) => order(gap, first) <= 0)) gaps.push(first);
      }
    }
    settleComplete();
    ready.set(true);
  };

  /**
   * Apply a page of older rows read by REST: as snapshot items, deleting nothing (a
   * page says nothing of the rows it does not list). `gap`: the gap it was read to fill,
   * `below`: the newest row held under that gap when it was asked for.
   */
  const page = (list, gap, below) => {
    const before = items.peek();
    for (const item of list) arrive(item, item?.version);
    const after = members ?? before;
    const added = new Set(list.map((item) => item?.id).filter((id) => id != null && !before.has(id) && after.has(id)));
    const oldest = list.find((item) => item?.id != null);
    if (list.length < last) {
      // Fewer than asked for: nothing is older, whatever gap it was filling included.
      reachedStart = true;
      gaps = [];
    } else if (gap) {
      const at = gaps.indexOf(gap);
      if (at === -1) {
        // A snapshot settled the gaps meanwhile: this page is only more rows.
      } else if (!below) {
        // The rows under the gap have gone (deleted): no gap, and no known start either.
        gaps.splice(at, 1);
        reachedStart = false;
      } else if (order(oldest, below) <= 0) {
        gaps.splice(at, 1); // the page reached the rows under the gap
      } else {
        gaps[at] = oldest; // the gap is now under the page
      }
    }
    settleComplete();
    return added.size;
  };

  /**
   * Read the window before the oldest row held (or, while there is a gap, before the
   * oldest row above the newest gap). One request at a time: a call while one is in
   * flight returns its promise.
   *
   * @returns {Promise<number>} how many rows it added
   */
  const loadEarlier = () => {
    if (loading) return loading;
    if (stopped || last == null || complete.peek()) return Promise.resolve(0);
    const shown = shownItems();
    /** The oldest row shown at or above `gap` (of all, without one). */
    const oldestFrom = (gap) => {
      let oldest = null;
      for (const item of shown) {
        if (gap && order(item, gap) < 0) continue;
        if (!oldest || order(item, oldest) < 0) oldest = item;
      }
      return oldest;
    };
    let gap = gaps.at(-1) ?? null;
    let edge = oldestFrom(gap);
    while (gap && !edge) {
      // Every row above the gap has gone (deleted): no gap to fill there any more.
      gaps.pop();
      gap = gaps.at(-1) ?? null;
      edge = oldestFrom(gap);
    }
    settleComplete();
    if (complete.peek()) return Promise.resolve(0);
    const below = gap && newestBefore(shown, gap);
    const query = { ...where, last, ...(edge ? { before: edge.id } : {}) };
    const request = listItems(name, query).then(
      (list) => {
        loading = null;
        if (stopped || !Array.isArray(list)) return 0;
        return batch(() => {
          members = null;
          const added = page(list, gap, below);
          if (members) items.set(members);
          members = null;
          return added;
        });
      },
      (err) => {
        loading = null;
        throw err;
      },
    );
    loading = request;
    return request;
  };

  /** The server ended the subscription: say why, let go of the rows, take nothing more. */
  const end = (message) => {
    stopped = true;
    collecting = null;
    rows.clear();
    gaps = [];
    batch(() => {
      error.set(message);
      items.set(new Map());
    });
    console.warn(`paintbrush: ${name}: closed by the server: ${message.reason}`);
  };

  const onMessage = (message) => {
    if (stopped) return;
    if (message.type === "error") {
      error.set(message);
      console.warn(`paintbrush: ${name}: ${message.error}: ${message.message}`);
      return;
    }
    if (message.type === "closed") {
      // With a reason, the server ended the subscription (protocol 2b: `forbidden`, the
      // user lost access) and no frame of it follows. Without, it answers a closedoc.
      if (message.reason != null) end(message);
      return;
    }
    if (message.type === "opened") {
      // The server sends a snapshot only right after `opened`: frames collected before
      // this one belong to an answer that will never be completed (a lost connection).
      collecting = null;
      return;
    }
    if (message.action === "snapshot" && message.more === true) {
      // Not applied yet: a row missing from this frame may be in the next one.
      (collecting ??= { frames: [], touched: new Set() }).frames.push(message);
      return;
    }
    // Events apply at once even between the frames of a snapshot, by version as always.
    if (collecting && (message.action === "update" || message.action === "delete")) collecting.touched.add(message.id);
    if (collecting && message.action === "create") collecting.touched.add(message.item?.id);
    // One batch per message: views see it applied whole, never half.
    batch(() => {
      members = null;
      switch (message.action) {
        case "create":
          arrive(message.item, message.version ?? message.item?.version);
          break;
        case "update":
          update(message.id, message.fields ?? {}, message.version);
          break;
        case "delete":
          remove(message.id, message.version);
          break;
        case "snapshot": {
          // The last frame (or the only one): the collected frames and it are one snapshot.
          const frames = [...(collecting?.frames ?? []), message];
          const touched = collecting?.touched;
          collecting = null;
          const list = frames.flatMap((frame) => (Array.isArray(frame.items) ? frame.items : []));
          // Windowed unless it says it holds the whole scope (a window as large as it).
          const windowed = frames.some((frame) => frame.last != null) && !frames.some((frame) => frame.complete === true);
          snapshot(list, touched, windowed);
          break;
        }
        default: // "resync", and whatever a newer server adds
          return;
      }
      if (members) items.set(members);
      members = null;
    });
  };

  const dispose = socket.subscribe(name, onMessage, { where, last: last ?? undefined });
  return { items, ready, error, complete, loadEarlier, dispose };
}

/**
 * Merge into `next` (a row's new item) the fields that are newer than what the row
 * has, recording their versions. Returns whether anything visible changed, so an
 * event or snapshot that brings nothing new sets no signal.
 */
function _merge(row, next, fields, version) {
  let changed = false;
  for (const field of Object.keys(fields)) {
    // The id is the key and `version` is the row's, kept below: neither is a field.
    if (field === "id" || field === "version") continue;
    if (!(version > (row.setAt.get(field) ?? 0))) continue;
    row.setAt.set(field, version);
    if (!(field in next) || !_same(next[field], fields[field])) {
      next[field] = fields[field];
      changed = true;
    }
  }
  if (version > row.version) {
    row.version = next.version = version;
    changed = true;
  }
  return changed;
}

/**
 * The default order, the demo's messages': by `created_at`, then `id`. Times are
 * compared as instants, to the microsecond (DRF renders `...:05Z` and `...:05.250000Z`
 * alike, which do not sort as text); ids as numbers, or as text.
 */
function _byCreatedAt(a, b) {
  return _compareTimes(a?.created_at, b?.created_at) || _compareIds(a?.id, b?.id);
}

function _compareTimes(a, b) {
  if (typeof a !== "string" || typeof b !== "string" || a === b) return 0;
  const ta = Date.parse(a);
  const tb = Date.parse(b);
  if (Number.isNaN(ta) || Number.isNaN(tb)) return a < b ? -1 : a > b ? 1 : 0;
  return ta - tb || _microseconds(a) - _microseconds(b);
}

/** The digits of a time's fraction beyond the milliseconds (Date.parse stops there). */
function _microseconds(text) {
  const fraction = /T[\d:]+\.(\d+)/.exec(text)?.[1] ?? "";
  return Number(fraction.slice(3, 6).padEnd(3, "0"));
}

function _compareIds(a, b) {
  if (typeof a === "number" && typeof b === "number") return a - b;
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Equality of JSON values, so a snapshot repeating a nested value sets nothing. */
function _same(a, b) {
  if (Object.is(a, b)) return true;
  return typeof a === "object" && typeof b === "object" && a !== null && b !== null
    && JSON.stringify(a) === JSON.stringify(b);
}

// #endregion
