import { afterEach, beforeEach, describe, it, mock } from "node:test";
import assert from "node:assert/strict";

import { effect } from "../../paintbrush/static/paintbrush/signals.js";
import { LiveSocket, canonicalWhere, connect, getSocket } from "../../paintbrush/static/paintbrush/socket.js";

/** A WebSocket class whose instances the test drives by hand. */
function fakeWebSocketClass() {
  return class FakeWebSocket {
    static instances = [];

    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closeCalls = 0;
      FakeWebSocket.instances.push(this);
    }

    static get last() {
      return FakeWebSocket.instances.at(-1);
    }

    send(data) {
      this.sent.push(JSON.parse(data));
    }

    close() {
      this.closeCalls++;
    }

    // Driven by the test, as the browser would.
    open() {
      this.onopen?.({});
    }

    receive(message) {
      this.onmessage?.({ data: typeof message === "string" ? message : JSON.stringify(message) });
    }

    drop() {
      this.onclose?.({ code: 1006 });
    }
  };
}

const URL = "ws://test/ws";
let WS;
let sockets;
let warn;

function open(options = {}) {
  const socket = connect(URL, { WebSocket: WS, random: () => 0.5, ...options });
  sockets.push(socket);
  return socket;
}

beforeEach(() => {
  WS = fakeWebSocketClass();
  sockets = [];
  warn = mock.method(console, "warn", () => {});
});

afterEach(() => {
  for (const socket of sockets) socket.close();
  warn.mock.restore();
});

describe("connect", () => {
  it("should open a WebSocket to the URL given", () => {
    const socket = open();
    assert.ok(socket instanceof LiveSocket);
    assert.equal(WS.instances.length, 1);
    assert.equal(WS.last.url, URL);
  });

  it("should resolve a path against the page's host, with wss on https", () => {
    const saved = globalThis.location;
    try {
      globalThis.location = { protocol: "https:", host: "example.com:8443" };
      sockets.push(connect(undefined, { WebSocket: WS }));
      sockets.push(connect("/ws/doc", { WebSocket: WS }));
      globalThis.location = { protocol: "http:", host: "localhost:8000" };
      sockets.push(connect(undefined, { WebSocket: WS }));
    } finally {
      globalThis.location = saved;
    }
    assert.deepEqual(WS.instances.map((ws) => ws.url), [
      "wss://example.com:8443/ws",
      "wss://example.com:8443/ws/doc",
      "ws://localhost:8000/ws",
    ]);
  });
});

describe("getSocket", () => {
  it("should return one shared socket for the page, on the default URL", () => {
    const saved = { location: globalThis.location, WebSocket: globalThis.WebSocket };
    try {
      globalThis.location = { protocol: "http:", host: "page.test" };
      globalThis.WebSocket = WS;
      const first = getSocket();
      sockets.push(first);
      assert.equal(getSocket(), first);
      assert.equal(WS.instances.length, 1);
      assert.equal(WS.last.url, "ws://page.test/ws");
      first.close();
      const second = getSocket();
      sockets.push(second);
      assert.notEqual(second, first);
    } finally {
      Object.assign(globalThis, saved);
    }
  });
});

describe("LiveSocket", () => {
  describe("connected", () => {
    it("should be true while the connection is open", () => {
      const socket = open();
      const seen = [];
      effect(() => seen.push(socket.connected.get()));
      WS.last.open();
      WS.last.drop();
      assert.deepEqual(seen, [false, true, false]);
    });
  });

  describe("subscribe", () => {
    it("should send opendoc with a snapshot at once when open", () => {
      const socket = open();
      WS.last.open();
      socket.subscribe("todos", () => {});
      assert.deepEqual(WS.last.sent, [{ action: "opendoc", resource: "todos", snapshot: true }]);
    });

    it("should not send while connecting, and open the subscription once connected", () => {
      const socket = open();
      socket.subscribe("todos", () => {});
      assert.deepEqual(WS.last.sent, []);
      WS.last.open();
      assert.deepEqual(WS.last.sent, [{ action: "opendoc", resource: "todos", snapshot: true }]);
    });

    it("should deliver only the messages of its resource", () => {
      const socket = open();
      WS.last.open();
      const todos = mock.fn();
      const notes = mock.fn();
      socket.subscribe("todos", todos);
      socket.subscribe("checklists", notes);
      WS.last.receive({ type: "opened", resource: "todos" });
      WS.last.receive({ resource: "todos", action: "delete", id: "a", version: 2 });
      WS.last.receive({ resource: "orders", action: "delete", id: 1, version: 2 });
      assert.equal(todos.mock.callCount(), 2);
      assert.deepEqual(todos.mock.calls[1].arguments[0], { resource: "todos", action: "delete", id: "a", version: 2 });
      assert.equal(notes.mock.callCount(), 0);
    });

    it("should deliver the errors about its resource to it, not to errors", () => {
      const socket = open();
      WS.last.open();
      const handler = mock.fn();
      socket.subscribe("notes", handler);
      const error = {
        type: "error", error: "unknown_resource", message: "not live",
        request: { action: "opendoc", resource: "notes" },
      };
      WS.last.receive(error);
      assert.deepEqual(handler.mock.calls[0].arguments[0], error);
      assert.equal(socket.errors.peek(), null);
    });

    it("should deliver document pushes to the doc resource", () => {
      const socket = open();
      WS.last.open();
      const handler = mock.fn();
      socket.subscribe("doc", handler);
      WS.last.receive({ type: "doc", doc: { role: "admin" } });
      assert.deepEqual(handler.mock.calls[0].arguments[0], { type: "doc", doc: { role: "admin" } });
    });

    it("should share one server subscription between subscribers of a resource", () => {
      const socket = open();
      WS.last.open();
      const first = mock.fn();
      const second = mock.fn();
      const stopFirst = socket.subscribe("todos", first);
      const stopSecond = socket.subscribe("todos", second);
      WS.last.receive({ resource: "todos", action: "delete", id: "a", version: 2 });
      assert.equal(first.mock.callCount(), 1);
      assert.equal(second.mock.callCount(), 1);
      stopFirst();
      stopFirst();
      assert.equal(WS.last.sent.length, 1);
      stopSecond();
      assert.deepEqual(WS.last.sent, [
        { action: "opendoc", resource: "todos", snapshot: true },
        { action: "closedoc", resource: "todos" },
      ]);
    });

    it("should count the same handler subscribed twice as two subscribers", () => {
      const socket = open();
      WS.last.open();
      const handler = mock.fn();
      const stop = socket.subscribe("todos", handler);
      socket.subscribe("todos", handler);
      stop();
      WS.last.receive({ resource: "todos", action: "delete", id: "a", version: 2 });
      assert.equal(handler.mock.callCount(), 1);
      assert.equal(WS.last.sent.length, 1);
    });

    it("should stop delivering after unsubscribe, even within the same message", () => {
      const socket = open();
      WS.last.open();
      let stopSecond;
      const first = mock.fn(() => stopSecond());
      const second = mock.fn();
      socket.subscribe("todos", first);
      stopSecond = socket.subscribe("todos", second);
      WS.last.receive({ resource: "todos", action: "delete", id: "a", version: 2 });
      assert.equal(first.mock.callCount(), 1);
      assert.equal(second.mock.callCount(), 0);
    });

    it("should keep delivering to other handlers when one throws", () => {
      const socket = open();
      WS.last.open();
      const error = mock.method(console, "error", () => {});
      const saved = globalThis.reportError;
      delete globalThis.reportError;
      try {
        const second = mock.fn();
        socket.subscribe("todos", () => { throw new Error("handler bug"); });
        socket.subscribe("todos", second);
        WS.last.receive({ resource: "todos", action: "delete", id: "a", version: 2 });
        assert.equal(second.mock.callCount(), 1);
        assert.match(String(error.mock.calls[0].arguments[0]), /handler bug/);
      } finally {
        error.mock.restore();
        if (saved) globalThis.reportError = saved;
      }
    });

    it("should send closedoc only while open", () => {
      const socket = open();
      const stop = socket.subscribe("todos", () => {});
      stop();
      WS.last.open();
      assert.deepEqual(WS.last.sent, []);
    });
  });

  describe("resync", () => {
    const reopen = { action: "opendoc", resource: "todos", snapshot: true };

    /** An open socket subscribed to todos, its opendoc answered; `sent` starts empty. */
    function subscribed(handler = () => {}) {
      const socket = open();
      WS.last.open();
      socket.subscribe("todos", handler);
      WS.last.receive({ type: "opened", resource: "todos" });
      WS.last.receive({ resource: "todos", action: "snapshot", items: [] });
      WS.last.sent.length = 0;
      return socket;
    }

    it("should re-open the resource with a snapshot, and count it in resyncs", () => {
      const socket = subscribed();
      const seen = [];
      effect(() => seen.push(socket.resyncs.get()));
      WS.last.receive({ type: "resync", resource: "todos", reason: "lost a message" });
      assert.deepEqual(WS.last.sent, [reopen]);
      assert.deepEqual(seen, [0, 1]);
    });

    it("should ignore a resync for a resource it has not open", () => {
      const socket = subscribed();
      WS.last.receive({ type: "resync", resource: "checklists", reason: "late" });
      WS.last.receive({ type: "resync", reason: "no resource" });
      assert.deepEqual(WS.last.sent, []);
      assert.equal(socket.resyncs.peek(), 0);
      assert.equal(socket.errors.peek(), null);
    });

    it("should re-open the document without asking for a snapshot", () => {
      const socket = open();
      WS.last.open();
      socket.subscribe("doc", () => {});
      WS.last.sent.length = 0;
      WS.last.receive({ type: "resync", resource: "doc", reason: "stale" });
      assert.deepEqual(WS.last.sent, [{ action: "opendoc", resource: "doc" }]);
    });

    it("should deliver the resync to the resource's subscribers too", () => {
      const handler = mock.fn();
      subscribed(handler);
      const resync = { type: "resync", resource: "todos", reason: "lost a message" };
      WS.last.receive(resync);
      assert.deepEqual(handler.mock.calls.at(-1).arguments[0], resync);
    });

    it("should keep one re-open in flight, and send one more after its snapshot when resynced meanwhile", () => {
      const socket = subscribed();
      for (let i = 0; i < 3; i++) WS.last.receive({ type: "resync", resource: "todos", reason: "again" });
      assert.deepEqual(WS.last.sent, [reopen]);
      assert.equal(socket.resyncs.peek(), 3);
      WS.last.receive({ type: "opened", resource: "todos" });
      WS.last.receive({ resource: "todos", action: "snapshot", items: [], more: true });
      assert.deepEqual(WS.last.sent, [reopen]);
      WS.last.receive({ resource: "todos", action: "snapshot", items: [] });
      assert.deepEqual(WS.last.sent, [reopen, reopen]);
      WS.last.receive({ type: "opened", resource: "todos" });
      WS.last.receive({ resource: "todos", action: "snapshot", items: [], more: false });
      assert.deepEqual(WS.last.sent, [reopen, reopen]);
      WS.last.receive({ type: "resync", resource: "todos", reason: "later" });
      assert.deepEqual(WS.last.sent, [reopen, reopen, reopen]);
    });

    it("should not take a snapshot that came before the re-open's opened as its answer", () => {
      subscribed();
      WS.last.receive({ type: "resync", resource: "todos", reason: "first" });
      // The answer to an earlier opendoc, still on its way when the resync came.
      WS.last.receive({ resource: "todos", action: "snapshot", items: [] });
      WS.last.receive({ type: "resync", resource: "todos", reason: "second" });
      assert.deepEqual(WS.last.sent, [reopen]);
      WS.last.receive({ type: "opened", resource: "todos" });
      WS.last.receive({ resource: "todos", action: "snapshot", items: [] });
      assert.deepEqual(WS.last.sent, [reopen, reopen]);
    });

    it("should finish a document's re-open when the document arrives", () => {
      const socket = open();
      WS.last.open();
      socket.subscribe("doc", () => {});
      WS.last.sent.length = 0;
      const reopenDoc = { action: "opendoc", resource: "doc" };
      WS.last.receive({ type: "resync", resource: "doc", reason: "stale" });
      WS.last.receive({ type: "resync", resource: "doc", reason: "stale again" });
      WS.last.receive({ type: "opened", resource: "doc" });
      assert.deepEqual(WS.last.sent, [reopenDoc]);
      WS.last.receive({ type: "doc", doc: { role: "admin" } });
      assert.deepEqual(WS.last.sent, [reopenDoc, reopenDoc]);
    });

    it("should give up a re-open the server refuses, and re-open at the next resync", () => {
      const handler = mock.fn();
      subscribed(handler);
      WS.last.receive({ type: "resync", resource: "todos", reason: "first" });
      WS.last.receive({ type: "resync", resource: "todos", reason: "second" });
      const error = { type: "error", error: "forbidden", message: "no", request: reopen };
      WS.last.receive(error);
      assert.deepEqual(handler.mock.calls.at(-1).arguments[0], error);
      assert.deepEqual(WS.last.sent, [reopen]);
      WS.last.receive({ type: "resync", resource: "todos", reason: "third" });
      assert.deepEqual(WS.last.sent, [reopen, reopen]);
    });

    it("should forget a re-open in flight when the connection drops, since reconnecting re-opens all", (t) => {
      t.mock.timers.enable({ apis: ["setTimeout"] });
      subscribed();
      WS.last.receive({ type: "resync", resource: "todos", reason: "first" });
      WS.last.drop();
      t.mock.timers.tick(30000);
      WS.last.open();
      assert.deepEqual(WS.last.sent, [reopen]);
      WS.last.receive({ type: "resync", resource: "todos", reason: "on the new connection" });
      assert.deepEqual(WS.last.sent, [reopen, reopen]);
    });

    it("should forget a re-open in flight when the resource is closed", () => {
      const socket = open();
      WS.last.open();
      const stop = socket.subscribe("todos", () => {});
      WS.last.receive({ type: "resync", resource: "todos", reason: "first" });
      stop();
      socket.subscribe("todos", () => {});
      WS.last.receive({ type: "resync", resource: "todos", reason: "after re-subscribing" });
      assert.deepEqual(WS.last.sent, [reopen, reopen, { action: "closedoc", resource: "todos" }, reopen, reopen]);
    });
  });

  describe("re-opening", () => {
    it("should deliver a second opened for an open resource, sending nothing", () => {
      const socket = open();
      WS.last.open();
      const handler = mock.fn();
      socket.subscribe("todos", handler);
      WS.last.receive({ type: "opened", resource: "todos" });
      WS.last.receive({ type: "opened", resource: "todos" });
      assert.equal(handler.mock.callCount(), 2);
      assert.deepEqual(WS.last.sent, [{ action: "opendoc", resource: "todos", snapshot: true }]);
      assert.equal(socket.errors.peek(), null);
    });
  });

  describe("errors", () => {
    it("should hold the last error about no subscribed resource, and warn", () => {
      const socket = open();
      WS.last.open();
      const error = { type: "error", error: "bad_json", message: "not JSON", request: null };
      WS.last.receive(error);
      assert.deepEqual(socket.errors.peek(), error);
      assert.equal(warn.mock.callCount(), 1);
    });

    it("should ignore a frame that is not JSON, with a warning", () => {
      const socket = open();
      WS.last.open();
      WS.last.receive("{nope");
      assert.equal(socket.errors.peek(), null);
      assert.equal(warn.mock.callCount(), 1);
    });
  });

  describe("reconnecting", () => {
    it("should reconnect after an unasked close, with a backoff that grows and is jittered", (t) => {
      t.mock.timers.enable({ apis: ["setTimeout"] });
      const jitter = [0, 1, 0.5];
      open({ random: () => jitter.shift(), backoff: { initial: 100, max: 1000, factor: 2 } });
      WS.last.drop();
      // Attempt 1: ceiling 100, jitter 0 -> 50 ms.
      t.mock.timers.tick(49);
      assert.equal(WS.instances.length, 1);
      t.mock.timers.tick(1);
      assert.equal(WS.instances.length, 2);
      WS.last.drop();
      // Attempt 2: ceiling 200, jitter 1 -> 200 ms.
      t.mock.timers.tick(199);
      assert.equal(WS.instances.length, 2);
      t.mock.timers.tick(1);
      assert.equal(WS.instances.length, 3);
      WS.last.drop();
      // Attempt 3: ceiling 400, jitter 0.5 -> 300 ms.
      t.mock.timers.tick(299);
      assert.equal(WS.instances.length, 3);
      t.mock.timers.tick(1);
      assert.equal(WS.instances.length, 4);
    });

    it("should never wait longer than the maximum", (t) => {
      t.mock.timers.enable({ apis: ["setTimeout"] });
      open({ random: () => 0.999999, backoff: { initial: 100, max: 300, factor: 10 } });
      for (let i = 0; i < 5; i++) {
        WS.last.drop();
        t.mock.timers.tick(300);
      }
      assert.equal(WS.instances.length, 6);
    });

    it("should wait at most 5 s by default, however many attempts failed, jittered over the upper half", (t) => {
      const delays = [];
      const pending = [];
      t.mock.method(globalThis, "setTimeout", (fn, delay) => {
        delays.push(delay);
        pending.push(fn);
        return delays.length;
      });
      let x = 7;
      const random = () => ((x = (x * 48271) % 2147483647) / 2147483647);
      open({ random });
      for (let attempt = 0; attempt < 40; attempt++) {
        WS.last.drop();
        pending.shift()();
      }
      assert.equal(WS.instances.length, 41);
      const ceilings = delays.map((_, i) => Math.min(5000, 500 * 2 ** i));
      delays.forEach((delay, i) => {
        assert.ok(delay <= ceilings[i], `attempt ${i}: ${delay} ms`);
        assert.ok(delay >= ceilings[i] / 2, `attempt ${i}: ${delay} ms`);
      });
      // At the cap, each page waits its own time: a restarted server's pages come back spread out.
      const capped = delays.slice(4);
      assert.ok(Math.max(...capped) - Math.min(...capped) > 1000, String(capped));
      assert.equal(new Set(capped).size, capped.length);
    });

    it("should try again within 5 s of a failure even after a long outage", (t) => {
      t.mock.timers.enable({ apis: ["setTimeout"] });
      const socket = open({ random: () => 0.999999 });
      WS.last.open();
      // Ten minutes down: every attempt fails, each at most 5 s after the last.
      for (let elapsed = 0; elapsed < 600000; elapsed += 5000) {
        const attempts = WS.instances.length;
        WS.last.drop();
        t.mock.timers.tick(5000);
        assert.equal(WS.instances.length, attempts + 1);
      }
      // The server is back: the attempt under way gets through.
      WS.last.open();
      assert.equal(socket.connected.peek(), true);
    });

    it("should start the backoff over after a successful open", (t) => {
      t.mock.timers.enable({ apis: ["setTimeout"] });
      open({ random: () => 0, backoff: { initial: 100, max: 10000, factor: 2 } });
      WS.last.drop();
      t.mock.timers.tick(50);
      WS.last.drop();
      t.mock.timers.tick(100);
      WS.last.open();
      WS.last.drop();
      t.mock.timers.tick(49);
      assert.equal(WS.instances.length, 3);
      t.mock.timers.tick(1);
      assert.equal(WS.instances.length, 4);
    });

    it("should re-open every current subscription with a snapshot", (t) => {
      t.mock.timers.enable({ apis: ["setTimeout"] });
      const socket = open();
      WS.last.open();
      socket.subscribe("todos", () => {});
      socket.subscribe("doc", () => {});
      const stop = socket.subscribe("checklists", () => {});
      stop();
      WS.last.drop();
      t.mock.timers.tick(30000);
      assert.equal(WS.instances.length, 2);
      WS.last.open();
      assert.deepEqual(WS.last.sent, [
        { action: "opendoc", resource: "todos", snapshot: true },
        { action: "opendoc", resource: "doc", snapshot: true },
      ]);
    });

    it("should drop what is sent while disconnected", () => {
      const socket = open();
      WS.last.open();
      WS.last.drop();
      socket.subscribe("todos", () => {});
      assert.deepEqual(WS.last.sent, []);
    });

    it("should ignore the messages of a connection it has replaced", (t) => {
      t.mock.timers.enable({ apis: ["setTimeout"] });
      const socket = open();
      const handler = mock.fn();
      socket.subscribe("todos", handler);
      const old = WS.last;
      old.open();
      old.drop();
      t.mock.timers.tick(30000);
      old.receive({ resource: "todos", action: "delete", id: "a", version: 2 });
      assert.equal(handler.mock.callCount(), 0);
    });
  });

  describe("scopes", () => {
    const M = "messages";
    const room = (id, extra = {}) => ({ action: "opendoc", resource: M, where: { room: id }, snapshot: true, ...extra });

    it("should open a scope with its where, a snapshot and its window", () => {
      const socket = open();
      WS.last.open();
      socket.subscribe(M, () => {}, { where: { room: 3 }, last: 50 });
      socket.subscribe(M, () => {}, { where: { room: 4 } });
      assert.deepEqual(WS.last.sent, [room(3, { last: 50 }), room(4)]);
    });

    it("should keep the scopes of one resource apart, and apart from the unscoped subscription", () => {
      const socket = open();
      WS.last.open();
      const three = mock.fn();
      const four = mock.fn();
      const all = mock.fn();
      socket.subscribe("todos", three, { where: { done: false } });
      socket.subscribe("todos", four, { where: { done: true } });
      socket.subscribe("todos", all);
      const open3 = { type: "opened", resource: "todos", where: { done: false } };
      const event4 = { resource: "todos", where: { done: true }, action: "delete", id: "a", version: 2 };
      const event = { resource: "todos", action: "delete", id: "a", version: 2 };
      WS.last.receive(open3);
      WS.last.receive(event4);
      WS.last.receive(event);
      WS.last.receive({ resource: "todos", where: { done: null }, action: "delete", id: "b", version: 2 });
      assert.deepEqual(three.mock.calls.map((c) => c.arguments[0]), [open3]);
      assert.deepEqual(four.mock.calls.map((c) => c.arguments[0]), [event4]);
      assert.deepEqual(all.mock.calls.map((c) => c.arguments[0]), [event]);
    });

    it("should route a frame to its scope whatever the order of the where's keys", () => {
      const socket = open();
      WS.last.open();
      const handler = mock.fn();
      socket.subscribe("cards", handler, { where: { lane: "b", board: 1 } });
      assert.deepEqual(WS.last.sent[0].where, { board: 1, lane: "b" });
      WS.last.receive({ type: "opened", resource: "cards", where: { board: 1, lane: "b" } });
      WS.last.receive({ type: "opened", resource: "cards", where: { lane: "b", board: 1 } });
      assert.equal(handler.mock.callCount(), 2);
    });

    it("should share one subscription between subscribers of a scope, the first setting the window", () => {
      const socket = open();
      WS.last.open();
      const stopFirst = socket.subscribe("cards", () => {}, { where: { board: 1, lane: "b" }, last: 10 });
      const stopSecond = socket.subscribe("cards", () => {}, { where: { lane: "b", board: 1 }, last: 99 });
      assert.equal(WS.last.sent.length, 1);
      assert.equal(WS.last.sent[0].last, 10);
      stopFirst();
      stopSecond();
      assert.deepEqual(WS.last.sent[1], { action: "closedoc", resource: "cards", where: { board: 1, lane: "b" } });
    });

    it("should close only the scope unsubscribed, with its where", () => {
      const socket = open();
      WS.last.open();
      const stop3 = socket.subscribe(M, () => {}, { where: { room: 3 } });
      const four = mock.fn();
      socket.subscribe(M, four, { where: { room: 4 } });
      stop3();
      assert.deepEqual(WS.last.sent.at(-1), { action: "closedoc", resource: M, where: { room: 3 } });
      WS.last.receive({ resource: M, where: { room: 4 }, action: "delete", id: 1, version: 2 });
      assert.equal(four.mock.callCount(), 1);
      assert.equal(WS.last.sent.length, 3);
    });

    it("should take an empty where as none: the whole resource", () => {
      const socket = open();
      WS.last.open();
      const handler = mock.fn();
      socket.subscribe("todos", handler, { where: {} });
      socket.subscribe("todos", () => {}, { where: null });
      WS.last.receive({ resource: "todos", action: "delete", id: "a", version: 2 });
      assert.deepEqual(WS.last.sent, [{ action: "opendoc", resource: "todos", snapshot: true }]);
      assert.equal(handler.mock.callCount(), 1);
    });

    it("should refuse a where that is not an object, naming it", () => {
      const socket = open();
      assert.throws(() => socket.subscribe(M, () => {}, { where: "room=3" }), /where is an object .*"room=3"/);
      assert.throws(() => socket.subscribe(M, () => {}, { where: [3] }), TypeError);
    });

    it("should deliver the errors about a scope to it, and those about no open scope to errors", () => {
      const socket = open();
      WS.last.open();
      const handler = mock.fn();
      socket.subscribe(M, handler, { where: { room: 9 } });
      const forbidden = { type: "error", error: "forbidden", message: "no", request: room(9) };
      const badWhere = { type: "error", error: "bad_where", message: "no", request: { action: "opendoc", resource: M, where: { nope: 1 } } };
      WS.last.receive(forbidden);
      WS.last.receive(badWhere);
      assert.deepEqual(handler.mock.calls.map((c) => c.arguments[0]), [forbidden]);
      assert.deepEqual(socket.errors.peek(), badWhere);
    });

    it("should re-open each scope with its where and window after a reconnect", (t) => {
      t.mock.timers.enable({ apis: ["setTimeout"] });
      const socket = open();
      WS.last.open();
      socket.subscribe(M, () => {}, { where: { room: 3 }, last: 50 });
      socket.subscribe(M, () => {}, { where: { room: 4 }, last: 20 });
      socket.subscribe("todos", () => {});
      WS.last.drop();
      t.mock.timers.tick(5000);
      WS.last.open();
      assert.deepEqual(WS.last.sent, [
        room(3, { last: 50 }),
        room(4, { last: 20 }),
        { action: "opendoc", resource: "todos", snapshot: true },
      ]);
    });

    it("should re-open only the scope a resync names, with its window", () => {
      const socket = open();
      WS.last.open();
      socket.subscribe(M, () => {}, { where: { room: 3 }, last: 50 });
      socket.subscribe(M, () => {}, { where: { room: 4 }, last: 20 });
      WS.last.sent.length = 0;
      WS.last.receive({ type: "resync", resource: M, where: { room: 4 }, reason: "lost" });
      WS.last.receive({ type: "resync", resource: M, where: { room: 4 }, reason: "again" });
      assert.deepEqual(WS.last.sent, [room(4, { last: 20 })]);
      WS.last.receive({ type: "opened", resource: M, where: { room: 4 } });
      // The other scope's snapshot does not finish this scope's re-open.
      WS.last.receive({ resource: M, where: { room: 3 }, action: "snapshot", items: [], last: 50 });
      assert.equal(WS.last.sent.length, 1);
      WS.last.receive({ resource: M, where: { room: 4 }, action: "snapshot", items: [], last: 20 });
      assert.deepEqual(WS.last.sent, [room(4, { last: 20 }), room(4, { last: 20 })]);
      assert.equal(socket.resyncs.peek(), 2);
    });

    describe("closed by the server", () => {
      const forbidden = { type: "closed", resource: M, where: { room: 3 }, reason: "forbidden" };

      it("should deliver it, then nothing more of the scope, and never re-open it", (t) => {
        t.mock.timers.enable({ apis: ["setTimeout"] });
        const socket = open();
        WS.last.open();
        const handler = mock.fn();
        const stop = socket.subscribe(M, handler, { where: { room: 3 } });
        socket.subscribe(M, () => {}, { where: { room: 4 } });
        WS.last.receive(forbidden);
        WS.last.receive({ resource: M, where: { room: 3 }, action: "delete", id: 1, version: 2 });
        WS.last.receive({ type: "resync", resource: M, where: { room: 3 }, reason: "late" });
        assert.deepEqual(handler.mock.calls.map((c) => c.arguments[0]), [forbidden]);
        WS.last.drop();
        t.mock.timers.tick(5000);
        WS.last.open();
        assert.deepEqual(WS.last.sent, [room(4)]);
        stop();
        assert.deepEqual(WS.last.sent, [room(4)]);
      });

      it("should open the scope afresh for a new subscriber, which an old unsubscribe does not close", () => {
        const socket = open();
        WS.last.open();
        const stopOld = socket.subscribe(M, () => {}, { where: { room: 3 } });
        WS.last.receive(forbidden);
        const fresh = mock.fn();
        socket.subscribe(M, fresh, { where: { room: 3 } });
        stopOld();
        WS.last.receive({ type: "opened", resource: M, where: { room: 3 } });
        assert.deepEqual(WS.last.sent, [room(3), room(3)]);
        assert.equal(fresh.mock.callCount(), 1);
      });

      it("should take a closed without a reason as the answer to a closedoc, ending nothing", (t) => {
        t.mock.timers.enable({ apis: ["setTimeout"] });
        const socket = open();
        WS.last.open();
        socket.subscribe(M, () => {}, { where: { room: 3 } });
        WS.last.receive({ type: "closed", resource: M, where: { room: 3 } });
        WS.last.drop();
        t.mock.timers.tick(5000);
        WS.last.open();
        assert.deepEqual(WS.last.sent, [room(3)]);
      });
    });
  });

  describe("document patches", () => {
    const OPENDOC = { action: "opendoc", resource: "doc", patch: true };

    it("should open the document asking for patches, again after a reconnect", (t) => {
      t.mock.timers.enable({ apis: ["setTimeout"] });
      const socket = open();
      WS.last.open();
      socket.subscribe("doc", () => {}, { patch: true });
      assert.deepEqual(WS.last.sent, [OPENDOC]);
      WS.last.drop();
      t.mock.timers.tick(30000);
      WS.last.open();
      assert.deepEqual(WS.last.sent, [OPENDOC]);
    });

    it("should keep the patch flag when a resync re-opens the document", () => {
      const socket = open();
      WS.last.open();
      socket.subscribe("doc", () => {}, { patch: true });
      WS.last.sent.length = 0;
      WS.last.receive({ type: "resync", resource: "doc", reason: "stale" });
      assert.deepEqual(WS.last.sent, [OPENDOC]);
    });

    it("should let the first subscriber decide, and ask patches of no other resource", () => {
      const socket = open();
      WS.last.open();
      socket.subscribe("doc", () => {});
      socket.subscribe("doc", () => {}, { patch: true });
      socket.subscribe("todos", () => {}, { patch: true });
      assert.deepEqual(WS.last.sent, [
        { action: "opendoc", resource: "doc", snapshot: true },
        { action: "opendoc", resource: "todos", snapshot: true },
      ]);
      WS.last.receive({ type: "resync", resource: "doc", reason: "stale" });
      assert.deepEqual(WS.last.sent.at(-1), { action: "opendoc", resource: "doc" });
    });

    it("should deliver patches to the document's subscribers", () => {
      const socket = open();
      WS.last.open();
      const handler = mock.fn();
      socket.subscribe("doc", handler, { patch: true });
      const frame = { type: "doc", resource: "doc", patch: [{ op: "remove", path: "/orders/0" }], rev: 18 };
      WS.last.receive(frame);
      assert.deepEqual(handler.mock.calls[0].arguments[0], frame);
    });

    it("should finish a document's re-open with the whole document, not with a patch", () => {
      const socket = open();
      WS.last.open();
      socket.subscribe("doc", () => {}, { patch: true });
      WS.last.sent.length = 0;
      WS.last.receive({ type: "resync", resource: "doc", reason: "first" });
      WS.last.receive({ type: "resync", resource: "doc", reason: "second" });
      WS.last.receive({ type: "opened", resource: "doc" });
      WS.last.receive({ type: "doc", resource: "doc", patch: [], rev: 18 });
      assert.deepEqual(WS.last.sent, [OPENDOC]);
      WS.last.receive({ type: "doc", resource: "doc", doc: { role: "admin" }, rev: 18 });
      assert.deepEqual(WS.last.sent, [OPENDOC, OPENDOC]);
    });
  });

  describe("reopen", () => {
    it("should open a subscription again as a resync does, without counting a resync", () => {
      const socket = open();
      WS.last.open();
      socket.subscribe("doc", () => {}, { patch: true });
      socket.subscribe("messages", () => {}, { where: { room: 3 }, last: 50 });
      WS.last.sent.length = 0;
      socket.reopen("doc");
      socket.reopen("messages", { where: { room: 3 } });
      assert.deepEqual(WS.last.sent, [
        { action: "opendoc", resource: "doc", patch: true },
        { action: "opendoc", resource: "messages", where: { room: 3 }, snapshot: true, last: 50 },
      ]);
      assert.equal(socket.resyncs.peek(), 0);
    });

    it("should send nothing while a re-open is on its way, and again once it is answered", () => {
      const socket = open();
      WS.last.open();
      socket.subscribe("doc", () => {}, { patch: true });
      WS.last.sent.length = 0;
      WS.last.receive({ type: "resync", resource: "doc", reason: "stale" });
      socket.reopen("doc");
      socket.reopen("doc");
      assert.deepEqual(WS.last.sent, [{ action: "opendoc", resource: "doc", patch: true }]);
      WS.last.receive({ type: "opened", resource: "doc" });
      WS.last.receive({ type: "doc", resource: "doc", doc: { role: "admin" }, rev: 3 });
      socket.reopen("doc");
      assert.equal(WS.last.sent.length, 2);
    });

    it("should send nothing for a resource not subscribed, or while disconnected", () => {
      const socket = open();
      socket.subscribe("doc", () => {}, { patch: true });
      socket.reopen("doc"); // not connected yet: connecting opens it
      WS.last.open();
      assert.deepEqual(WS.last.sent, [{ action: "opendoc", resource: "doc", patch: true }]);
      socket.reopen("todos");
      socket.reopen("messages", { where: { room: 3 } });
      assert.equal(WS.last.sent.length, 1);
    });
  });

  describe("close", () => {
    it("should close the connection and never reconnect", (t) => {
      t.mock.timers.enable({ apis: ["setTimeout"] });
      const socket = open();
      WS.last.open();
      const ws = WS.last;
      socket.close();
      ws.drop();
      t.mock.timers.tick(60000);
      assert.equal(ws.closeCalls, 1);
      assert.equal(WS.instances.length, 1);
      assert.equal(socket.connected.peek(), false);
    });

    it("should cancel a reconnect already scheduled", (t) => {
      t.mock.timers.enable({ apis: ["setTimeout"] });
      const socket = open();
      WS.last.drop();
      socket.close();
      t.mock.timers.tick(60000);
      assert.equal(WS.instances.length, 1);
    });
  });
});

describe("canonicalWhere", () => {
  it("should name a where by its JSON with the keys sorted, at any depth", () => {
    assert.equal(canonicalWhere({ room: 3 }), '{"room":3}');
    assert.equal(canonicalWhere({ lane: "b", board: 1 }), canonicalWhere({ board: 1, lane: "b" }));
    assert.equal(canonicalWhere({ b: { y: 1, x: [2, { q: 1, p: 0 }] }, a: null }), '{"a":null,"b":{"x":[2,{"p":0,"q":1}],"y":1}}');
  });

  it("should name no where by the empty string", () => {
    for (const none of [undefined, null, {}]) assert.equal(canonicalWhere(none), "");
  });
});
