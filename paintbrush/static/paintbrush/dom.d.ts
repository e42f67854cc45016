/**
 * Declarations of dom.js: a keyed list that touches only the rows that changed.
 *
 *     const dispose = renderList(ul, todos.items, (todo) => {
 *       const li = document.createElement("li");
 *       effect(() => { li.textContent = todo.get().title; });  // re-runs for this row only
 *       return li;
 *     }, { sort: (a, b) => a.created_at.localeCompare(b.created_at) });
 */
import type { ReadonlySignal } from "./signals.js";

export interface RenderListOptions<T> {
  /** Order of the elements (by default the map's); the list then also follows every row's value. */
  sort?: (a: T, b: T) => number;
}

/**
 * Keep one element per row of `items` in `container`, in map order or by `sort`.
 * `renderItem(itemSignal, id)` is called once when a row appears, untracked, in an
 * ownership scope of that row; its element gets `data-id="<id>"`.
 *
 * @returns dispose: disposes every row's effects and removes the elements
 */
export function renderList<T>(
  container: Element,
  items: ReadonlySignal<Map<string | number, ReadonlySignal<T>>>,
  renderItem: (item: ReadonlySignal<T>, id: string | number) => Element,
  options?: RenderListOptions<T>,
): () => void;

/**
 * Escape text for HTML, in element content and in quoted attribute values. `null` and
 * `undefined` become "".
 */
export function escapeHtml(value: unknown): string;
