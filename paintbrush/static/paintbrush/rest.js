/**
 * Paintbrush REST helpers: the commands of docs/protocol.md (section 1), with Django's CSRF
 * token and readable errors.
 *
 *     import { createItem, updateItem, ApiError } from "./rest.js";
 *
 *     const todo = await createItem("todos", { title: "Write docs" });
 *     try {
 *       await updateItem("todos", todo.id, { done: true }, { version: todo.version });
 *     } catch (err) {
 *       if (err instanceof ApiError && err.status === 412) console.log("changed meanwhile");
 *     }
 *
 * Writes return what the server answered; the list on screen changes by the socket's
 * event, like everyone else's, not by this response.
 */

// #region Settings

const _settings = { base: "/api/", fetch: null };

/**
 * Change where and how requests go. Only the keys given change; `fetch: null` goes
 * back to the global fetch.
 *
 * @param {{base?: string, fetch?: typeof fetch | null}} options
 *   base: URL prefix of the resources (default "/api/"); fetch: the function to call
 */
function configure(options) {
  for (const key of ["base", "fetch"]) if (key in options) _settings[key] = options[key];
}

// #endregion
// #region Errors

/** The server answered a request with a status other than 2xx. */
class ApiError extends Error {
  /**
   * @param {number} status  the HTTP status
   * @param {unknown} body  the response body, parsed from JSON when it was JSON
   * @param {string} message  readable, e.g. "title: This field is required."
   */
  constructor(status, body, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

/** DRF's error bodies made readable: `{"detail": ...}`, field errors, or a list. */
function _describe(response, body) {
  const text = (errors) => [].concat(errors).map((e) => (typeof e === "string" ? e : JSON.stringify(e))).join(" ");
  if (Array.isArray(body) && body.length) return text(body);
  if (body && typeof body === "object") {
    if (typeof body.detail === "string") return body.detail;
    const parts = Object.entries(body).map(([field, errors]) =>
      field === "non_field_errors" ? text(errors) : `${field}: ${text(errors)}`,
    );
    if (parts.length) return parts.join("; ");
  }
  // Not JSON (an HTML error page, say): never put markup in a message.
  return `${response.status} ${response.statusText || "request failed"}`;
}

// #endregion
// #region Requests

function _url(name, id) {
  const base = _settings.base.endsWith("/") ? _settings.base : `${_settings.base}/`;
  const path = base + encodeURIComponent(name);
  return id === undefined ? path : `${path}/${encodeURIComponent(id)}`;
}

/**
 * `?field=value&...` in the order given, or "" when nothing is given. A value goes as
 * the REST API renders it (`true`, `3`, `abc`): strings as they are, the rest as JSON.
 * Undefined values are left out.
 */
function _query(params) {
  const search = new URLSearchParams();
  for (const [field, value] of Object.entries(params ?? {})) {
    if (value !== undefined) search.append(field, typeof value === "string" ? value : JSON.stringify(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** The CSRF token: Django's cookie, else a `<meta name="csrf-token">` in the page. */
function _csrfToken() {
  const doc = globalThis.document;
  if (!doc) return null;
  // The cookie first: Django rotates it on login, when a token rendered into the page
  // goes stale. The meta serves when the cookie is HttpOnly or renamed.
  const match = /(?:^|;\s*)csrftoken=([^;]*)/.exec(doc.cookie ?? "");
  if (match) return decodeURIComponent(match[1]);
  return doc.querySelector?.('meta[name="csrf-token"]')?.getAttribute("content") ?? null;
}

async function _request(method, url, { body, version } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") {
    const token = _csrfToken();
    if (token) headers["X-CSRFToken"] = token;
  }
  if (version != null) headers["If-Match"] = `"${version}"`;
  // Called on globalThis: browsers refuse a fetch invoked as a method of another object.
  const response = await (_settings.fetch ?? globalThis.fetch).call(globalThis, url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = response.status === 204 ? "" : await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) throw new ApiError(response.status, data, _describe(response, data));
  return data;
}

// #endregion
// #region Public API

/**
 * `GET <base><name>`: every item of the resource the caller may see. With `query`, the
 * items it selects: a scope's fields, and a window (docs/protocol.md, section 2b):
 *
 *     await listItems("messages", { room: 3, last: 50 });              // the room's last 50
 *     await listItems("messages", { room: 3, last: 50, before: 812 }); // the 50 before 812
 *
 * @param {string} name
 * @param {Record<string, unknown>} [query]  query parameters, e.g. `{room: 3, last: 50}`
 * @returns {Promise<object[]>}  in the resource's order
 */
function listItems(name, query) {
  return _request("GET", _url(name) + _query(query));
}

/**
 * `POST <base><name>`: create an item.
 *
 * @param {string} name
 * @param {object} data  its fields
 * @returns {Promise<object>} the created item
 */
function createItem(name, data) {
  return _request("POST", _url(name), { body: data });
}

/**
 * `PATCH <base><name>/<id>`: change some fields. With `version`, only if the row is
 * still at that version (else an ApiError with status 412).
 *
 * @param {string} name
 * @param {string | number} id
 * @param {object} fields
 * @param {{version?: number}} [options]
 * @returns {Promise<object>} the updated item
 */
function updateItem(name, id, fields, { version } = {}) {
  return _request("PATCH", _url(name, id), { body: fields, version });
}

/**
 * `DELETE <base><name>/<id>`. With `version`, only if the row is still at that version.
 *
 * @param {string} name
 * @param {string | number} id
 * @param {{version?: number}} [options]
 * @returns {Promise<null>}
 */
function removeItem(name, id, { version } = {}) {
  return _request("DELETE", _url(name, id), { version });
}

export { ApiError, configure, createItem, listItems, removeItem, updateItem };

// #endregion
