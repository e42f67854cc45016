/**
 * Declarations of the Paintbrush browser client (index.js re-exports every module's
 * public API). The client is plain ES modules; these declarations let TypeScript (and
 * editors) check code that imports it. Map the import map's name in tsconfig.json:
 *
 *     "paths": { "paintbrush": ["./<where the app's static files are>/paintbrush/index.js"] }
 *
 * and generate the resources' item types with `python manage.py paintbrush_types`
 * (docs/contracts.md):
 *
 *     import { getSocket, liveResource } from "paintbrush";
 *     import type { Todo } from "./resources.js";
 *
 *     const todos = liveResource<Todo>(getSocket(), "todos");
 */
export { batch, computed, effect, root, signal, untracked } from "./signals.js";
export type { ReadonlySignal, Signal } from "./signals.js";
export { LiveSocket, canonicalWhere, connect, getSocket } from "./socket.js";
export type {
  ClientMessage,
  ClosedMessage,
  ClosedocRequest,
  CreateMessage,
  DeleteMessage,
  DocMessage,
  DocPatchMessage,
  ErrorCode,
  ErrorMessage,
  MessageHandler,
  OpenedMessage,
  OpendocRequest,
  ResyncMessage,
  RoleDocumentBase,
  ServerMessage,
  SnapshotMessage,
  SocketOptions,
  SubscribableSocket,
  SubscribeOptions,
  UpdateMessage,
  WebSocketLike,
  Where,
} from "./socket.js";
export { liveResource } from "./live.js";
export type { Item, ItemSignal, LiveResource, LiveResourceOptions } from "./live.js";
export { liveDoc } from "./doc.js";
export { PatchError, applyPatch } from "./patch.js";
export type { LiveDoc, LiveDocOptions } from "./doc.js";
export type { JsonPointer, PatchOperation } from "./patch.js";
export { ApiError, configure, createItem, listItems, removeItem, updateItem } from "./rest.js";
export type { FetchLike, RestOptions, WriteOptions } from "./rest.js";
export { escapeHtml, renderList } from "./dom.js";
export type { RenderListOptions } from "./dom.js";
