import { afterEach, beforeEach, describe, it, mock } from "node:test";
import assert from "node:assert/strict";

import {
  ApiError, configure, createItem, listItems, removeItem, updateItem,
} from "../../paintbrush/static/paintbrush/rest.js";

let fetchSpy;
let responses;

/** Queue the responses the fake fetch returns, in order. */
function respond(...list) {
  responses.push(...list);
}

const json = (body, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
const call = (index = 0) => {
  const [url, init] = fetchSpy.mock.calls[index].arguments;
  return { url, ...init };
};

beforeEach(() => {
  responses = [];
  fetchSpy = mock.fn(async () => responses.shift() ?? json([]));
  configure({ fetch: fetchSpy, base: "/api/" });
  globalThis.document = { cookie: "sessionid=s; csrftoken=tok%3D1; other=x", querySelector: () => null };
});

afterEach(() => {
  configure({ fetch: null, base: "/api/" });
  delete globalThis.document;
});

describe("configure", () => {
  it("should change the base URL, with or without a trailing slash", async () => {
    configure({ base: "/v2/api" });
    await listItems("todos");
    configure({ base: "/v3/" });
    await listItems("todos");
    assert.equal(call(0).url, "/v2/api/todos");
    assert.equal(call(1).url, "/v3/todos");
  });
});

describe("listItems", () => {
  it("should GET the resource and return the parsed items", async () => {
    respond(json([{ id: "a" }]));
    assert.deepEqual(await listItems("todos"), [{ id: "a" }]);
    const request = call();
    assert.equal(request.url, "/api/todos");
    assert.equal(request.method, "GET");
    assert.equal(request.credentials, "same-origin");
    assert.equal(request.headers.Accept, "application/json");
    assert.equal(request.body, undefined);
    assert.equal(request.headers["X-CSRFToken"], undefined);
  });

  it("should put a scope and a window in the query, in the order given, values as REST renders them", async () => {
    await listItems("messages", { room: 3, last: 50, before: "a b" });
    await listItems("todos", { done: false, before: undefined });
    await listItems("todos", {});
    assert.equal(call(0).url, "/api/messages?room=3&last=50&before=a+b");
    assert.equal(call(1).url, "/api/todos?done=false");
    assert.equal(call(2).url, "/api/todos");
  });
});

describe("createItem", () => {
  it("should POST JSON with the CSRF token from the cookie", async () => {
    respond(json({ id: "a", title: "T" }, 201));
    assert.deepEqual(await createItem("todos", { title: "T" }), { id: "a", title: "T" });
    const request = call();
    assert.equal(request.method, "POST");
    assert.equal(request.url, "/api/todos");
    assert.equal(request.body, '{"title":"T"}');
    assert.equal(request.headers["Content-Type"], "application/json");
    assert.equal(request.headers.Accept, "application/json");
    assert.equal(request.headers["X-CSRFToken"], "tok=1");
  });

  it("should take the CSRF token from a meta tag when there is no cookie", async () => {
    globalThis.document = {
      cookie: "",
      querySelector: (selector) => (selector === 'meta[name="csrf-token"]' ? { getAttribute: () => "from-meta" } : null),
    };
    await createItem("todos", { title: "T" });
    assert.equal(call().headers["X-CSRFToken"], "from-meta");
  });

  it("should throw an ApiError joining DRF's field errors", async () => {
    respond(json({ title: ["This field is required."], done: ["Must be a boolean.", "Really."] }, 400));
    const error = await createItem("todos", {}).catch((err) => err);
    assert.ok(error instanceof ApiError);
    assert.ok(error instanceof Error);
    assert.equal(error.status, 400);
    assert.deepEqual(error.body, { title: ["This field is required."], done: ["Must be a boolean.", "Really."] });
    assert.equal(error.message, "title: This field is required.; done: Must be a boolean. Really.");
  });

  it("should use the detail of an error, and the status when the body is not JSON", async () => {
    respond(json({ detail: "Authentication credentials were not provided." }, 403));
    respond(new Response("<h1>Forbidden</h1>", { status: 403, statusText: "Forbidden" }));
    respond(json({ non_field_errors: ["Bad pair."] }, 400));
    const messages = [];
    for (let i = 0; i < 3; i++) messages.push(await createItem("todos", {}).catch((err) => err.message));
    assert.deepEqual(messages, ["Authentication credentials were not provided.", "403 Forbidden", "Bad pair."]);
  });
});

describe("updateItem", () => {
  it("should PATCH the item's URL with the fields", async () => {
    respond(json({ id: "a b", done: true }));
    await updateItem("todos", "a b", { done: true });
    const request = call();
    assert.equal(request.method, "PATCH");
    assert.equal(request.url, "/api/todos/a%20b");
    assert.equal(request.body, '{"done":true}');
    assert.equal(request.headers["If-Match"], undefined);
  });

  it("should send If-Match with the quoted version, and throw 412 as an ApiError", async () => {
    respond(json({ detail: "Precondition failed." }, 412));
    const error = await updateItem("todos", 7, { done: true }, { version: 3 }).catch((err) => err);
    assert.equal(call().headers["If-Match"], '"3"');
    assert.equal(call().url, "/api/todos/7");
    assert.equal(error.status, 412);
    assert.equal(error.message, "Precondition failed.");
  });
});

describe("removeItem", () => {
  it("should DELETE the item with the CSRF token and return null on 204", async () => {
    respond(new Response(null, { status: 204 }));
    assert.equal(await removeItem("todos", "a", { version: 2 }), null);
    const request = call();
    assert.equal(request.method, "DELETE");
    assert.equal(request.url, "/api/todos/a");
    assert.equal(request.body, undefined);
    assert.equal(request.headers["Content-Type"], undefined);
    assert.equal(request.headers["If-Match"], '"2"');
    assert.equal(request.headers["X-CSRFToken"], "tok=1");
  });

  it("should throw an ApiError with the status on 404", async () => {
    respond(json({ detail: "Not found." }, 404));
    await assert.rejects(removeItem("todos", "gone"), (err) => err instanceof ApiError && err.status === 404 && err.message === "Not found.");
  });
});

describe("ApiError", () => {
  it("should carry its status, body and message, named ApiError", () => {
    const error = new ApiError(400, { a: ["b"] }, "a: b");
    assert.equal(error.name, "ApiError");
    assert.equal(error.status, 400);
    assert.deepEqual(error.body, { a: ["b"] });
    assert.equal(error.message, "a: b");
  });
});
