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
 */
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
 * @property {import("./signals.js").ReadonlySignal<object | null>} error  the last server error about this resource
 * @property {() => void} dispose  stop (the subscription closes when no one else on the socket uses it)
 */

/**
 * Subscribe to a notified resource and keep its rows as signals. Calls for the same
 * resource on the same socket share one store (and one server subscription).
 *
 * @param {{subscribe(resource: string, handler: (message: any) => void): () => void}} socket
 *   a LiveSocket (see socket.js)
 * @param {string} name  the resource, e.g. "todos"
 * @returns {LiveResource}
 */
function liveResource(socket, name) {
  const [store, release] = sharedStore(socket, `resource:${name}`, () => _createStore(socket, name));
  return { items: store.items, ready: store.ready, error: store.error, dispose: release };
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

function _createStore(socket, name) {
  const items = signal(new Map());
  const ready = signal(false);
  const error = signal(null);
  /** @type {Map<string | number, _Row>} every row heard of, shown or not */
  const rows = new Map();
  // The new membership Map, copied on the first add or remove of a message and set once
  // at its end: a snapshot of a thousand rows is one outer change, not a thousand.
  let members = null;
  const editMembers = () => (members ??= new Map(items.peek()));
  /**
   * A split snapshot being collected, null when none is: its frames' items so far, and
   * the rows that events touched meanwhile.
   * @type {{parts: Array<Array<Item>>, touched: Set<string | number>} | null}
   */
  let collecting = null;

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

  /**
   * Apply a whole snapshot. `touched` are rows that events brought while its frames
   * were arriving: such an event may be newer than the frame that would have listed
   * the row, so its absence from the snapshot does not mean it was deleted (a delete
   * would come as an event of its own, since the subscription was open).
   */
  const snapshot = (list, touched) => {
    const listed = new Set();
    for (const item of list) {
      listed.add(item?.id);
      arrive(item, item?.version);
    }
    for (const [id, row] of rows) {
      if (row.signal && !listed.has(id) && !touched?.has(id)) {
        // Deleted while we were not listening, at a version we never saw but above the
        // one we hold: a late event at or below it (say its create) must not revive it.
        row.tomb = Math.max(row.tomb, row.version);
        hide(id, row);
      }
      if (!row.signal && !row.tomb && !row.held.length) rows.delete(id);
    }
    ready.set(true);
  };

  const onMessage = (message) => {
    if (message.type === "error") {
      error.set(message);
      console.warn(`paintbrush: ${name}: ${message.error}: ${message.message}`);
      return;
    }
    if (message.type === "opened") {
      // The server sends a snapshot only right after `opened`: frames collected before
      // this one belong to an answer that will never be completed (a lost connection).
      collecting = null;
      return;
    }
    const list = Array.isArray(message.items) ? message.items : [];
    if (message.action === "snapshot" && message.more === true) {
      // Not applied yet: a row missing from this frame may be in the next one.
      (collecting ??= { parts: [], touched: new Set() }).parts.push(list);
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
          const whole = collecting;
          collecting = null;
          snapshot(whole ? [...whole.parts, list].flat() : list, whole?.touched);
          break;
        }
        default: // "closed", "resync", and whatever a newer server adds
          return;
      }
      if (members) items.set(members);
      members = null;
    });
  };

  const dispose = socket.subscribe(name, onMessage);
  return { items, ready, error, dispose };
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

/** Equality of JSON values, so a snapshot repeating a nested value sets nothing. */
function _same(a, b) {
  if (Object.is(a, b)) return true;
  return typeof a === "object" && typeof b === "object" && a !== null && b !== null
    && JSON.stringify(a) === JSON.stringify(b);
}

// #endregion
