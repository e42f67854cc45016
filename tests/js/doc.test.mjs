import { afterEach, beforeEach, describe, it, mock } from "node:test";
import assert from "node:assert/strict";

import { effect } from "../../paintbrush/static/paintbrush/signals.js";
import { liveDoc } from "../../paintbrush/static/paintbrush/doc.js";

/** The part of a LiveSocket that liveDoc uses, driven by the test. */
class FakeSocket {
  constructor() {
    this.handlers = new Map();
    this.subscribed = [];
    this.unsubscribeCalls = 0;
  }

  subscribe(resource, handler) {
    this.subscribed.push(resource);
    this.handlers.set(resource, handler);
    return () => {
      this.unsubscribeCalls++;
      this.handlers.delete(resource);
    };
  }

  emit(message) {
    this.handlers.get("doc")?.(message);
  }
}

let socket;
let live;

beforeEach(() => {
  socket = new FakeSocket();
  live = liveDoc(socket);
});

afterEach(() => live.dispose());

describe("liveDoc", () => {
  it("should subscribe to the doc resource and hold null until the first push", () => {
    assert.deepEqual(socket.subscribed, ["doc"]);
    assert.equal(live.doc.peek(), null);
    assert.equal(live.ready.peek(), false);
  });

  it("should set the document of every push, with ready, in one batch", () => {
    const seen = [];
    effect(() => seen.push([live.ready.get(), live.doc.get()?.orders.length ?? null]));
    socket.emit({ type: "opened", resource: "doc" });
    socket.emit({ type: "doc", doc: { role: "customer", orders: [] } });
    socket.emit({ type: "doc", doc: { role: "customer", orders: [{ id: 1 }] } });
    assert.deepEqual(seen, [[false, null], [true, 0], [true, 1]]);
  });

  it("should take the document sent again after a second opened, as any push", () => {
    socket.emit({ type: "opened", resource: "doc" });
    socket.emit({ type: "doc", doc: { role: "admin", orders: [] } });
    socket.emit({ type: "resync", resource: "doc", reason: "stale" });
    socket.emit({ type: "opened", resource: "doc" });
    socket.emit({ type: "doc", doc: { role: "admin", orders: [{ id: 1 }] } });
    assert.deepEqual(live.doc.peek(), { role: "admin", orders: [{ id: 1 }] });
    assert.equal(live.ready.peek(), true);
    assert.equal(live.error.peek(), null);
    assert.deepEqual(socket.subscribed, ["doc"]);
  });

  it("should hold the server's errors about the document, with a warning", () => {
    const warn = mock.method(console, "warn", () => {});
    try {
      const error = { type: "error", error: "forbidden", message: "sign in", request: { action: "opendoc", resource: "doc" } };
      socket.emit(error);
      assert.deepEqual(live.error.peek(), error);
      assert.equal(live.doc.peek(), null);
      assert.equal(warn.mock.callCount(), 1);
    } finally {
      warn.mock.restore();
    }
  });

  it("should share one signal between the calls on a socket, and unsubscribe after the last", () => {
    socket.emit({ type: "doc", doc: { role: "admin" } });
    const second = liveDoc(socket);
    assert.equal(second.doc, live.doc);
    assert.deepEqual(second.doc.peek(), { role: "admin" });
    assert.deepEqual(socket.subscribed, ["doc"]);
    live.dispose();
    assert.equal(socket.unsubscribeCalls, 0);
    second.dispose();
    assert.equal(socket.unsubscribeCalls, 1);
  });
});
