/**
 * Paintbrush DOM helpers: a keyed list that touches only the rows that changed.
 *
 *     import { renderList } from "./dom.js";
 *     import { effect } from "./signals.js";
 *
 *     const dispose = renderList(ul, todos.items, (todo) => {
 *       const li = document.createElement("li");
 *       effect(() => { li.textContent = todo.get().title; });  // re-runs for this row only
 *       return li;
 *     }, { sort: (a, b) => a.created_at.localeCompare(b.created_at) });
 *
 * The seed's outer effect emptied the list and rebuilt every row on any add or
 * remove; here a row's element is built once, when the row appears, and kept until
 * it goes.
 */
import { effect, root } from "./signals.js";

// #region renderList

/**
 * Keep one element per row of `items` in `container`, in map order or by `sort`.
 *
 * `renderItem(itemSignal, id)` is called once when a row appears, untracked, in an
 * ownership scope of that row: the effects it creates live until the row goes (or the
 * list is disposed), whatever else changes. Its element gets `data-id="<id>"`. Rows
 * that stay are never re-rendered nor moved unless the order requires it.
 *
 * With `sort`, the list also follows every row's value (a change may reorder), but a
 * row's element still only moves when its place changes. The container should hold
 * nothing else after the list's elements.
 *
 * @template T
 * @param {Element} container
 * @param {import("./signals.js").ReadonlySignal<Map<string | number, import("./signals.js").ReadonlySignal<T>>>} items
 * @param {(item: import("./signals.js").ReadonlySignal<T>, id: string | number) => Element} renderItem
 * @param {{sort?: (a: T, b: T) => number}} [options]
 * @returns {() => void} dispose: disposes every row's effects and removes the elements
 */
function renderList(container, items, renderItem, { sort } = {}) {
  /** @type {Map<string | number, {element: Element, dispose: () => void}>} */
  const rows = new Map();
  let order = []; // ids in the order their elements are in the container

  const reconcile = (map) => {
    for (const [id, row] of rows) {
      if (map.has(id)) continue;
      row.dispose();
      row.element.remove();
      rows.delete(id);
    }
    let ids = [...map.keys()];
    if (sort) {
      const values = new Map(ids.map((id) => [id, map.get(id).get()])); // tracked: reorders
      ids = ids.sort((a, b) => sort(values.get(a), values.get(b)));
    }
    for (const id of ids) {
      if (rows.has(id)) continue;
      // A scope of its own per row: this effect re-runs on every add or remove, and
      // must not take the other rows' inner effects down with it.
      root((dispose) => {
        const element = renderItem(map.get(id), id);
        element.setAttribute("data-id", String(id));
        rows.set(id, { element, dispose });
      });
    }
    _place(container, order.filter((id) => map.has(id)), ids, rows);
    order = ids;
  };

  // The holder reads nothing, so it never re-runs and its cleanup runs only on
  // dispose, when the caller disposes the list or an effect that owns it re-runs.
  return effect(() => {
    effect(() => reconcile(items.get()));
    return () => {
      for (const row of rows.values()) {
        row.dispose();
        row.element.remove();
      }
      rows.clear();
      order = [];
    };
  });
}

/**
 * Move the elements from the `current` order to the `wanted` one with the fewest
 * insertions: the longest run of rows already in the wanted relative order stays put,
 * every other element (new rows included) is inserted before its wanted successor.
 */
function _place(container, current, wanted, rows) {
  const position = new Map(current.map((id, index) => [id, index]));
  const stay = _longestIncreasing(wanted.map((id) => position.get(id) ?? -1));
  let next = null;
  for (let index = wanted.length - 1; index >= 0; index--) {
    const { element } = rows.get(wanted[index]);
    if (!stay.has(index)) container.insertBefore(element, next);
    next = element;
  }
}

/**
 * Indexes of a longest strictly increasing subsequence of `sequence`, ignoring
 * negative entries (new rows, which have no position yet). Patience sorting, O(n log n).
 */
function _longestIncreasing(sequence) {
  const tails = []; // tails[k]: index of the smallest last value of an increasing run of length k+1
  const previous = new Array(sequence.length);
  for (let index = 0; index < sequence.length; index++) {
    const value = sequence[index];
    if (value < 0) continue;
    let low = 0;
    let high = tails.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (sequence[tails[middle]] < value) low = middle + 1;
      else high = middle;
    }
    previous[index] = low > 0 ? tails[low - 1] : -1;
    tails[low] = index;
  }
  const result = new Set();
  for (let index = tails.length ? tails[tails.length - 1] : -1; index >= 0; index = previous[index]) {
    result.add(index);
  }
  return result;
}

// #endregion
// #region Strings

const _ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/**
 * Escape text for HTML, in element content and in quoted attribute values. `null` and
 * `undefined` become "".
 *
 * @param {unknown} value
 * @returns {string}
 */
function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (char) => _ENTITIES[char]);
}

export { escapeHtml, renderList };

// #endregion
