/**
 * Declarations of rest.js: the commands of docs/protocol.md (section 1), with Django's
 * CSRF token and readable errors.
 *
 *     configure({ base: "/v2/api/" });                    // where the resources are mounted
 *     const todo = await createItem<Todo>("todos", { title: "Write docs" });
 *     await updateItem<Todo>("todos", todo.id, { done: true }, { version: todo.version });
 */
import type { Item } from "./live.js";

/** What rest.js needs of `fetch`: the global one, or a test double. */
export type FetchLike = (
  url: string,
  init: {
    method: string;
    headers: Record<string, string>;
    credentials: "same-origin";
    body: string | undefined;
  },
) => Promise<{ ok: boolean; status: number; statusText: string; text(): Promise<string> }>;

export interface RestOptions {
  /** URL prefix of the resources (default "/api/"); a missing final "/" is added. */
  base?: string;
  /** The function to call instead of the global fetch; null goes back to the global one. */
  fetch?: FetchLike | null;
}

/**
 * Change where and how requests go. Only the keys given change; `fetch: null` goes
 * back to the global fetch.
 */
export function configure(options: RestOptions): void;

/** The server answered a request with a status other than 2xx. */
export class ApiError extends Error {
  /**
   * @param status the HTTP status
   * @param body the response body, parsed from JSON when it was JSON
   * @param message readable, e.g. "title: This field is required."
   */
  constructor(status: number, body: unknown, message: string);
  /** The HTTP status: 400, 403, 404, 412 (If-Match failed), 415, ... */
  status: number;
  /** The response body, parsed from JSON when it was JSON. */
  body: unknown;
}

/** The options of a conditional write. */
export interface WriteOptions {
  /** Only if the row is still at this version (`If-Match`), else an ApiError with status 412. */
  version?: number | null;
}

/**
 * `GET <base><name>`: every item of the resource the caller may see. With `query`, the
 * items it selects: a scope's fields, and a window (docs/protocol.md, section 2b), e.g.
 * `listItems("messages", { room: 3, last: 50, before: 812 })`: the 50 messages of room 3
 * before message 812, in the resource's order. A value goes as the REST API renders it
 * (strings as they are, the rest as JSON); undefined values are left out.
 */
export function listItems<T = Item>(name: string, query?: Record<string, unknown>): Promise<T[]>;

/** `POST <base><name>`: create an item; resolves to the created item. */
export function createItem<T = Item>(name: string, data: object): Promise<T>;

/**
 * `PATCH <base><name>/<id>`: change some fields; resolves to the updated item. With
 * `version`, only if the row is still at that version (else an ApiError with status 412).
 */
export function updateItem<T = Item>(
  name: string,
  id: string | number,
  fields: object,
  options?: WriteOptions,
): Promise<T>;

/** `DELETE <base><name>/<id>`. With `version`, only if the row is still at that version. */
export function removeItem(name: string, id: string | number, options?: WriteOptions): Promise<null>;
