/**
 * Paintbrush browser client: the public API of every module, in one import.
 *
 *     import { getSocket, liveResource, renderList, updateItem, effect } from "./index.js";
 *
 *     const todos = liveResource(getSocket(), "todos");
 *     renderList(document.querySelector("ul"), todos.items, (todo, id) => {
 *       const li = document.createElement("li");
 *       effect(() => { li.textContent = todo.get().title; });
 *       li.onclick = () => updateItem("todos", id, { done: !todo.peek().done });
 *       return li;
 *     });
 */
export { batch, computed, effect, root, signal, untracked } from "./signals.js";
export { LiveSocket, canonicalWhere, connect, getSocket } from "./socket.js";
export { liveResource } from "./live.js";
export { liveDoc } from "./doc.js";
export { PatchError, applyPatch } from "./patch.js";
export { ApiError, configure, createItem, listItems, removeItem, updateItem } from "./rest.js";
export { escapeHtml, renderList } from "./dom.js";
