import { afterEach, beforeEach, describe, it, mock } from "node:test";
import assert from "node:assert/strict";

import { effect } from "../../paintbrush/static/paintbrush/signals.js";
import { liveResource } from "../../paintbrush/static/paintbrush/live.js";
import { ApiError, configure } from "../../paintbrush/static/paintbrush/rest.js";
import { canonicalWhere } from "../../paintbrush/static/paintbrush/socket.js";

/**
 * The part of a LiveSocket that liveResource uses, driven by the test: one handler per
 * resource and where, as LiveSocket routes them.
 */
class FakeSocket {
  constructor() {
    this.handlers = new Map();
    this.options = new Map();
    this.subscribeCalls = 0;
    this.unsubscribeCalls = 0;
  }

  static key(resource, where) {
    const scope = canonicalWhere(where);
    return scope ? `${resource}?${scope}` : resource;
  }

  subscribe(resource, handler, options = {}) {
    const key = FakeSocket.key(resource, options.where);
    this.subscribeCalls++;
    this.handlers.set(key, handler);
    this.options.set(key, options);
    return () => {
      this.unsubscribeCalls++;
      this.handlers.delete(key);
    };
  }

  emit(message) {
    const about = message.type === "error" ? message.request : message;
    this.handlers.get(FakeSocket.key(about?.resource, about?.where))?.(message);
  }
}

const R = "todos";
const create = (item, version = item.version ?? 1) => ({ resource: R, action: "create", item: { ...item, version } });
const update = (id, fields, version) => ({ resource: R, action: "update", id, fields, version });
const remove = (id, version) => ({ resource: R, action: "delete", id, version });
const snapshot = (...items) => ({ resource: R, action: "snapshot", items });
/** A snapshot frame that is not the last of its snapshot. */
const partial = (...items) => ({ ...snapshot(...items), more: true });
const opened = { type: "opened", resource: R };

/** The rows as plain objects by id. */
const rowsOf = (store) => Object.fromEntries([...store.items.peek()].map(([id, s]) => [id, s.peek()]));

// A scope of messages, and its frames.
const M = "messages";
const W = { room: 3 };
/** Message `n`, written at second `n` of a minute. */
const msg = (n) => ({ id: n, room: 3, text: `m${n}`, created_at: `2024-01-01T10:00:${String(n).padStart(2, "0")}Z`, version: 1 });
/** A windowed snapshot of the scope (not complete). */
const lastRows = (...items) => ({ resource: M, where: W, action: "snapshot", items, last: 2 });

let socket;
let store;
let fetchSpy;
let responses;

function emit(...messages) {
  for (const message of messages) socket.emit(message);
}

/** Queue the JSON bodies the fake fetch answers, in order. */
function respond(...bodies) {
  responses.push(...bodies.map((body) => new Response(JSON.stringify(body), { status: 200 })));
}

beforeEach(() => {
  socket = new FakeSocket();
  store = liveResource(socket, R);
  responses = [];
  fetchSpy = mock.fn(async () => responses.shift() ?? new Response("[]", { status: 200 }));
  configure({ fetch: fetchSpy, base: "/api/" });
});

afterEach(() => {
  store.dispose();
  configure({ fetch: null });
});

describe("liveResource", () => {
  describe("subscribing", () => {
    it("should subscribe to its resource and not be ready before a snapshot", () => {
      assert.equal(socket.subscribeCalls, 1);
      assert.ok(socket.handlers.has(R));
      assert.equal(store.ready.peek(), false);
      emit({ type: "opened", resource: R }, create({ id: "a", title: "A" }));
      assert.equal(store.ready.peek(), false);
    });

    it("should be ready once a snapshot was applied", () => {
      emit(snapshot({ id: "a", title: "A", version: 1 }));
      assert.equal(store.ready.peek(), true);
      assert.deepEqual(rowsOf(store), { a: { id: "a", title: "A", version: 1 } });
    });

    it("should unsubscribe on dispose", () => {
      store.dispose();
      store.dispose();
      assert.equal(socket.unsubscribeCalls, 1);
    });

    it("should share one store between the calls for a resource on a socket", () => {
      emit(snapshot({ id: "a", title: "A", version: 1 }));
      const second = liveResource(socket, R);
      assert.equal(second.items, store.items);
      assert.equal(second.ready.peek(), true);
      assert.equal(socket.subscribeCalls, 1);
      second.dispose();
      assert.equal(socket.unsubscribeCalls, 0);
      store.dispose();
      assert.equal(socket.unsubscribeCalls, 1);
      const third = liveResource(socket, R);
      assert.notEqual(third.items, store.items);
      third.dispose();
    });

    it("should hold the server's errors about the resource, with a warning", () => {
      const warn = mock.method(console, "warn", () => {});
      try {
        const error = { type: "error", error: "forbidden", message: "no", request: { action: "opendoc", resource: R } };
        emit(error);
        assert.deepEqual(store.error.peek(), error);
        assert.equal(warn.mock.callCount(), 1);
      } finally {
        warn.mock.restore();
      }
    });
  });

  describe("create", () => {
    it("should add a row holding the item at its version", () => {
      emit(create({ id: "a", title: "A", done: false }));
      assert.deepEqual(rowsOf(store), { a: { id: "a", title: "A", done: false, version: 1 } });
    });

    it("should change the outer signal once per created row", () => {
      const spy = mock.fn(() => store.items.get());
      effect(spy);
      emit(create({ id: "a" }), create({ id: "b" }));
      assert.equal(spy.mock.callCount(), 3);
    });

    it("should not change a row that is already newer", () => {
      emit(snapshot({ id: "a", title: "new", version: 3 }));
      const row = store.items.peek().get("a");
      const before = row.peek();
      emit(create({ id: "a", title: "old" }));
      assert.equal(row.peek(), before);
    });
  });

  describe("update", () => {
    beforeEach(() => emit(snapshot({ id: "a", title: "A", done: false, version: 1 }, { id: "b", title: "B", done: false, version: 1 })));

    it("should change only the fields it carries, and the version", () => {
      emit(update("a", { done: true }, 2));
      assert.deepEqual(rowsOf(store).a, { id: "a", title: "A", done: true, version: 2 });
    });

    it("should notify only the changed row's signal, and not the outer one", () => {
      const outer = mock.fn(() => store.items.get());
      const rowA = mock.fn(() => store.items.peek().get("a").get());
      const rowB = mock.fn(() => store.items.peek().get("b").get());
      effect(outer);
      effect(rowA);
      effect(rowB);
      emit(update("a", { done: true }, 2));
      assert.equal(outer.mock.callCount(), 1);
      assert.equal(rowA.mock.callCount(), 2);
      assert.equal(rowB.mock.callCount(), 1);
    });

    it("should ignore a field already set by a newer event", () => {
      emit(update("a", { title: "A3" }, 3), update("a", { title: "A2" }, 2));
      assert.equal(rowsOf(store).a.title, "A3");
    });

    it("should apply an older update's field that no newer event touched", () => {
      emit(update("a", { title: "A3" }, 3), update("a", { done: true }, 2));
      assert.deepEqual(rowsOf(store).a, { id: "a", title: "A3", done: true, version: 3 });
    });

    it("should set nothing when all its fields are stale", () => {
      emit(update("a", { title: "A3" }, 3));
      const spy = mock.fn(() => store.items.peek().get("a").get());
      effect(spy);
      emit(update("a", { title: "A2" }, 2), update("a", { title: "A3" }, 3));
      assert.equal(spy.mock.callCount(), 1);
    });

    it("should hold an update for a row not seen yet, without showing it", () => {
      const outer = mock.fn(() => store.items.get());
      effect(outer);
      emit(update("c", { done: true }, 2));
      assert.equal(store.items.peek().has("c"), false);
      assert.equal(outer.mock.callCount(), 1);
    });

    it("should apply a held update once the row's create arrives", () => {
      emit(update("c", { done: true }, 3), update("c", { title: "C2" }, 2), create({ id: "c", title: "C", done: false }));
      assert.deepEqual(rowsOf(store).c, { id: "c", title: "C2", done: true, version: 3 });
    });

    it("should apply a held update by version when a snapshot brings the row", () => {
      emit(update("c", { title: "old" }, 2), update("c", { done: true }, 4));
      emit(snapshot({ id: "c", title: "snap", done: false, version: 3 }));
      assert.deepEqual(rowsOf(store).c, { id: "c", title: "snap", done: true, version: 4 });
    });
  });

  describe("delete", () => {
    beforeEach(() => emit(snapshot({ id: "a", title: "A", version: 1 }, { id: "b", title: "B", version: 1 })));

    it("should remove the row, changing the outer signal once", () => {
      const outer = mock.fn(() => store.items.get());
      effect(outer);
      emit(remove("a", 2));
      assert.deepEqual(Object.keys(rowsOf(store)), ["b"]);
      assert.equal(outer.mock.callCount(), 2);
    });

    it("should ignore what comes later about the row at or below its version", () => {
      emit(remove("a", 3), update("a", { title: "A2" }, 2), update("a", { title: "A3" }, 3), create({ id: "a", title: "A" }));
      emit(snapshot({ id: "a", title: "A2", version: 2 }, { id: "b", title: "B", version: 1 }));
      assert.deepEqual(Object.keys(rowsOf(store)), ["b"]);
    });

    it("should win over a create that arrives after it", () => {
      emit(remove("c", 2), create({ id: "c", title: "C" }));
      assert.equal(store.items.peek().has("c"), false);
    });

    it("should discard the updates held for the row", () => {
      emit(update("c", { title: "C2" }, 2), remove("c", 3), create({ id: "c", title: "C" }));
      assert.equal(store.items.peek().has("c"), false);
    });

    it("should let a newer create, update or snapshot item bring the row back", () => {
      emit(remove("a", 2), create({ id: "a", title: "back" }, 3));
      assert.deepEqual(rowsOf(store).a, { id: "a", title: "back", version: 3 });
      emit(remove("a", 4), update("a", { title: "held" }, 5));
      assert.equal(store.items.peek().has("a"), false);
      emit(snapshot({ id: "a", title: "snap", version: 5 }, { id: "b", title: "B", version: 1 }));
      assert.deepEqual(rowsOf(store).a, { id: "a", title: "snap", version: 5 });
    });

    it("should not remove a row shown at a newer version", () => {
      emit(remove("a", 2), create({ id: "a", title: "back" }, 4), remove("a", 3));
      assert.deepEqual(rowsOf(store).a, { id: "a", title: "back", version: 4 });
    });
  });

  describe("snapshot", () => {
    it("should drop the rows it does not list", () => {
      emit(create({ id: "a" }), create({ id: "b" }));
      emit(snapshot({ id: "b", version: 1 }));
      assert.deepEqual(Object.keys(rowsOf(store)), ["b"]);
    });

    it("should keep the signal of a row it lists, updating only newer fields", () => {
      emit(create({ id: "a", title: "A", done: false }), update("a", { done: true }, 3));
      const row = store.items.peek().get("a");
      emit(snapshot({ id: "a", title: "A2", done: false, version: 2 }));
      assert.equal(store.items.peek().get("a"), row);
      assert.deepEqual(row.peek(), { id: "a", title: "A2", done: true, version: 3 });
    });

    it("should not set a row's signal when it brings nothing new", () => {
      emit(snapshot({ id: "a", title: "A", tags: ["x"], version: 2 }));
      const spy = mock.fn(() => store.items.peek().get("a").get());
      effect(spy);
      emit(snapshot({ id: "a", title: "A", tags: ["x"], version: 2 }));
      assert.equal(spy.mock.callCount(), 1);
    });

    it("should not change the outer signal when membership stays the same", () => {
      emit(snapshot({ id: "a", title: "A", version: 1 }));
      const outer = mock.fn(() => store.items.get());
      effect(outer);
      emit(snapshot({ id: "a", title: "A2", version: 2 }));
      assert.equal(outer.mock.callCount(), 1);
    });

    it("should be applied whole: an effect reading every row runs once", () => {
      emit(snapshot({ id: "a", title: "A", version: 1 }, { id: "b", title: "B", version: 1 }));
      const spy = mock.fn(() => [...store.items.get().values()].map((row) => row.get().title).join());
      effect(spy);
      emit(snapshot({ id: "a", title: "A2", version: 2 }, { id: "b", title: "B2", version: 2 }, { id: "c", title: "C", version: 1 }));
      assert.equal(spy.mock.callCount(), 2);
      assert.equal(spy.mock.calls[1].result, "A2,B2,C");
    });

    it("should keep a row it dropped from coming back by a late create", () => {
      emit(create({ id: "a", title: "A" }), update("a", { title: "A2" }, 2));
      emit(snapshot());
      emit(create({ id: "a", title: "A" }));
      assert.equal(store.items.peek().has("a"), false);
    });
  });

  describe("split snapshot", () => {
    beforeEach(() => emit(snapshot({ id: "a", title: "A", version: 1 }, { id: "b", title: "B", version: 1 })));

    it("should keep a row absent from an early frame but listed in a later one, with its signal", () => {
      const rowB = store.items.peek().get("b");
      const outer = mock.fn(() => store.items.get());
      effect(outer);
      emit(opened, partial({ id: "a", title: "A", version: 1 }));
      assert.deepEqual(Object.keys(rowsOf(store)), ["a", "b"]);
      emit(snapshot({ id: "b", title: "B2", version: 2 }));
      assert.equal(store.items.peek().get("b"), rowB);
      assert.deepEqual(rowsOf(store).b, { id: "b", title: "B2", version: 2 });
      assert.equal(outer.mock.callCount(), 1);
    });

    it("should drop the rows no frame lists only once the last frame arrives", () => {
      emit(opened, partial({ id: "b", title: "B", version: 1 }), partial());
      assert.deepEqual(Object.keys(rowsOf(store)), ["a", "b"]);
      emit(snapshot({ id: "c", title: "C", version: 1 }));
      assert.deepEqual(Object.keys(rowsOf(store)), ["b", "c"]);
    });

    it("should take a frame with more: false as the last one", () => {
      emit(opened, partial({ id: "a", title: "A", version: 1 }), { ...snapshot(), more: false });
      assert.deepEqual(Object.keys(rowsOf(store)), ["a"]);
    });

    it("should not be ready before its last frame", () => {
      const fresh = new FakeSocket();
      const live = liveResource(fresh, R);
      fresh.emit(opened);
      fresh.emit(partial({ id: "a", title: "A", version: 1 }));
      assert.equal(live.ready.peek(), false);
      assert.equal(live.items.peek().size, 0);
      fresh.emit(snapshot({ id: "b", title: "B", version: 1 }));
      assert.equal(live.ready.peek(), true);
      assert.deepEqual(Object.keys(rowsOf(live)), ["a", "b"]);
      live.dispose();
    });

    it("should be applied whole: an effect reading every row runs once for all its frames", () => {
      const spy = mock.fn(() => [...store.items.get().values()].map((row) => row.get().title).join());
      effect(spy);
      emit(opened, partial({ id: "a", title: "A2", version: 2 }), partial({ id: "c", title: "C", version: 1 }));
      emit(snapshot({ id: "b", title: "B2", version: 2 }));
      assert.equal(spy.mock.callCount(), 2);
      assert.equal(spy.mock.calls[1].result, "A2,B2,C");
    });

    it("should apply the events that come between its frames, by version, and lose none", () => {
      emit(opened, partial({ id: "a", title: "A", version: 1 }));
      // A row created after its frames were read, a change newer than a later frame,
      // and a delete of a row a later frame still lists.
      emit(create({ id: "c", title: "C" }), update("b", { title: "B3" }, 3), remove("a", 2));
      assert.deepEqual(rowsOf(store), { b: { id: "b", title: "B3", version: 3 }, c: { id: "c", title: "C", version: 1 } });
      emit(snapshot({ id: "a", title: "A", version: 1 }, { id: "b", title: "B2", version: 2 }));
      assert.deepEqual(rowsOf(store), { b: { id: "b", title: "B3", version: 3 }, c: { id: "c", title: "C", version: 1 } });
    });

    it("should discard the frames of a snapshot that a new opened interrupts", () => {
      // Frames of an answer lost with its connection, then the new connection's answer.
      emit(opened, partial({ id: "a", title: "A", version: 1 }), opened);
      emit(snapshot({ id: "b", title: "B", version: 1 }));
      assert.deepEqual(Object.keys(rowsOf(store)), ["b"]);
    });
  });

  describe("re-opening", () => {
    it("should take a second opened and its snapshot without duplicating anything", () => {
      emit(opened, snapshot({ id: "a", title: "A", version: 1 }));
      const rowA = store.items.peek().get("a");
      const outer = mock.fn(() => store.items.get());
      effect(outer);
      emit(opened, snapshot({ id: "a", title: "A", version: 1 }));
      assert.deepEqual(rowsOf(store), { a: { id: "a", title: "A", version: 1 } });
      assert.equal(store.items.peek().get("a"), rowA);
      assert.equal(outer.mock.callCount(), 1);
      assert.equal(store.ready.peek(), true);
      assert.equal(store.error.peek(), null);
    });
  });

  describe("scopes", () => {
    it("should subscribe to its scope and window, sharing one store per where in any key order", () => {
      const first = liveResource(socket, "cards", { where: { lane: "b", board: 1 }, last: 20 });
      const second = liveResource(socket, "cards", { where: { board: 1, lane: "b" }, last: 99 });
      const other = liveResource(socket, "cards", { where: { board: 2, lane: "b" } });
      assert.equal(second.items, first.items);
      assert.notEqual(other.items, first.items);
      assert.deepEqual(socket.options.get('cards?{"board":1,"lane":"b"}'), { where: { board: 1, lane: "b" }, last: 20 });
      assert.equal(socket.subscribeCalls, 3); // todos, and the two scopes
      first.dispose();
      second.dispose();
      other.dispose();
    });

    it("should keep the rows of two scopes and of the whole resource apart", () => {
      const open = liveResource(socket, R, { where: { done: false } });
      const closed = liveResource(socket, R, { where: { done: true } });
      emit(
        { ...snapshot({ id: "a", done: false, version: 1 }), where: { done: false } },
        { ...snapshot({ id: "b", done: true, version: 1 }), where: { done: true } },
        snapshot({ id: "a", done: false, version: 1 }, { id: "b", done: true, version: 1 }),
        { ...remove("a", 2), where: { done: false } },
      );
      assert.deepEqual(Object.keys(rowsOf(open)), []);
      assert.deepEqual(Object.keys(rowsOf(closed)), ["b"]);
      assert.deepEqual(Object.keys(rowsOf(store)), ["a", "b"]);
      open.dispose();
      closed.dispose();
    });

    it("should refuse a where that is not an object, or a window that is not a count", () => {
      assert.throws(() => liveResource(socket, M, { where: 3 }), /where is an object .* not 3/);
      assert.throws(() => liveResource(socket, M, { where: W, last: 0 }), /last is a count .* not 0/);
      assert.throws(() => liveResource(socket, M, { where: W, last: 2.5 }), TypeError);
      assert.throws(() => liveResource(socket, M, { where: W, order: "created_at" }), TypeError);
    });
  });

  describe("windowed snapshot", () => {
    it("should keep the rows it does not list that sort before its first row, and drop those after", () => {
      const room = liveResource(socket, M, { where: W, last: 3 });
      emit(lastRows(msg(3), msg(4), msg(5), msg(6)));
      emit(lastRows(msg(5), msg(7), msg(8)));
      // 3 and 4 sort before 5, the window's first row; 6 sorts after it and is not
      // listed: it was deleted while the socket was away.
      assert.deepEqual(Object.keys(rowsOf(room)).map(Number).sort((a, b) => a - b), [3, 4, 5, 7, 8]);
      room.dispose();
    });

    it("should drop every row it does not list when it says it is complete", () => {
      const room = liveResource(socket, M, { where: W, last: 3 });
      emit(lastRows(msg(3), msg(4), msg(5)));
      emit({ ...lastRows(msg(5)), complete: true });
      assert.deepEqual(Object.keys(rowsOf(room)), ["5"]);
      room.dispose();
    });

    it("should keep every row when it lists none", () => {
      const room = liveResource(socket, M, { where: W, last: 3 });
      emit(lastRows(msg(3), msg(4)));
      emit(lastRows());
      assert.deepEqual(Object.keys(rowsOf(room)), ["3", "4"]);
      room.dispose();
    });

    it("should be applied whole when split, its first row the first frame's", () => {
      const room = liveResource(socket, M, { where: W, last: 3 });
      emit(lastRows(msg(2), msg(3), msg(4)));
      emit({ type: "opened", resource: M, where: W }, { ...lastRows(msg(3)), more: true }, lastRows(msg(5), msg(6)));
      assert.deepEqual(Object.keys(rowsOf(room)), ["2", "3", "5", "6"]);
      room.dispose();
    });

    it("should compare times as instants to the microsecond, then ids", () => {
      const room = liveResource(socket, M, { where: W, last: 3 });
      const t = (time, id) => ({ ...msg(id), created_at: `2024-01-01T10:00:${time}` });
      emit(lastRows(
        t("05.000100Z", 7), // before the first row by a tenth of a millisecond, larger id: kept
        t("05Z", 2), // same instant, same microsecond, smaller id: kept
        t("05.000200Z", 3), // first row
        t("05.25Z", 4), // after, though "05.25Z" < "05.000200Z" as text: dropped
        t("04.999999+00:00", 5), // before, in another notation: kept
        t("05.000200Z", 6), // same time, larger id: dropped
      ));
      emit(lastRows({ ...t("05.000200Z", 3) }));
      assert.deepEqual(Object.keys(rowsOf(room)).sort(), ["2", "3", "5", "7"]);
      room.dispose();
    });

    it("should compare numeric ids as numbers", () => {
      const room = liveResource(socket, M, { where: W, last: 3 });
      const same = (id) => ({ ...msg(id), created_at: "2024-01-01T10:00:00Z" });
      emit(lastRows(same(9), same(10), same(100)));
      emit(lastRows(same(10)));
      assert.deepEqual(Object.keys(rowsOf(room)).sort(), ["10", "9"]);
      room.dispose();
    });

    it("should sort by the order option when given one", () => {
      const board = liveResource(socket, "cards", { where: { board: 1 }, last: 2, order: (a, b) => a.position - b.position });
      const card = (id, position) => ({ id, position, version: 1 });
      const frame = (...items) => ({ resource: "cards", where: { board: 1 }, action: "snapshot", items, last: 2 });
      socket.emit(frame(card("x", 1), card("y", 2), card("z", 3)));
      socket.emit(frame(card("y", 2), card("w", 4)));
      assert.deepEqual(Object.keys(rowsOf(board)), ["x", "y", "w"]);
      board.dispose();
    });
  });

  describe("loadEarlier", () => {
    it("should GET the scope's window before the oldest row held, and add its rows", async () => {
      const room = liveResource(socket, M, { where: { room: 3 }, last: 2 });
      emit(lastRows(msg(5), msg(6)));
      respond([msg(3), msg(4)]);
      assert.equal(await room.loadEarlier(), 2);
      assert.equal(fetchSpy.mock.calls[0].arguments[0], "/api/messages?room=3&last=2&before=5");
      assert.equal(fetchSpy.mock.calls[0].arguments[1].method, "GET");
      assert.deepEqual(Object.keys(rowsOf(room)), ["3", "4", "5", "6"]);
      respond([msg(1), msg(2)]);
      assert.equal(await room.loadEarlier(), 2);
      assert.equal(fetchSpy.mock.calls[1].arguments[0], "/api/messages?room=3&last=2&before=3");
      room.dispose();
    });

    it("should put the where's fields in the query sorted, before the window", async () => {
      const board = liveResource(socket, "cards", { where: { lane: "b c", board: 1 }, last: 5 });
      await board.loadEarlier();
      assert.equal(fetchSpy.mock.calls[0].arguments[0], "/api/cards?board=1&lane=b+c&last=5");
      board.dispose();
    });

    it("should merge by version: an older page row changes nothing, a deleted row stays deleted", async () => {
      const room = liveResource(socket, M, { where: W, last: 3 });
      emit(lastRows({ ...msg(5), text: "edited", version: 2 }, msg(6), msg(7)));
      emit({ resource: M, where: W, action: "delete", id: 4, version: 2 });
      const row5 = room.items.peek().get(5);
      respond([msg(3), msg(4), msg(5)]);
      assert.equal(await room.loadEarlier(), 1);
      assert.equal(room.items.peek().get(5), row5);
      assert.equal(row5.peek().text, "edited");
      assert.deepEqual(Object.keys(rowsOf(room)), ["3", "5", "6", "7"]);
      room.dispose();
    });

    it("should change the outer signal once per page", async () => {
      const room = liveResource(socket, M, { where: W, last: 3 });
      emit(lastRows(msg(5), msg(6), msg(7)));
      const outer = mock.fn(() => room.items.get());
      effect(outer);
      respond([msg(2), msg(3), msg(4)]);
      await room.loadEarlier();
      assert.equal(outer.mock.callCount(), 2);
      room.dispose();
    });

    it("should ask without before when no row is held", async () => {
      const room = liveResource(socket, M, { where: W, last: 50 });
      respond([msg(1)]);
      assert.equal(await room.loadEarlier(), 1);
      assert.equal(fetchSpy.mock.calls[0].arguments[0], "/api/messages?room=3&last=50");
      room.dispose();
    });

    it("should return the request in flight to a second call", async () => {
      const room = liveResource(socket, M, { where: W, last: 2 });
      emit(lastRows(msg(5), msg(6)));
      respond([msg(3), msg(4)]);
      const first = room.loadEarlier();
      assert.equal(room.loadEarlier(), first);
      await first;
      assert.equal(fetchSpy.mock.callCount(), 1);
      room.dispose();
    });

    it("should reject with the ApiError of a failed request, and let a later call try again", async () => {
      const room = liveResource(socket, M, { where: W, last: 2 });
      emit(lastRows(msg(5), msg(6)));
      responses.push(new Response(JSON.stringify({ before: ["No row 5 to read before."] }), { status: 400 }));
      await assert.rejects(room.loadEarlier(), (err) => err instanceof ApiError && err.status === 400);
      respond([msg(3), msg(4)]);
      assert.equal(await room.loadEarlier(), 2);
      room.dispose();
    });

    it("should resolve to 0 without a request for a store without a window", async () => {
      assert.equal(await store.loadEarlier(), 0);
      emit(snapshot({ id: "a", version: 1 }));
      assert.equal(await store.loadEarlier(), 0);
      assert.equal(fetchSpy.mock.callCount(), 0);
    });

    it("should keep the rows it loaded through a later windowed snapshot", async () => {
      const room = liveResource(socket, M, { where: W, last: 2 });
      emit(lastRows(msg(5), msg(6)));
      respond([msg(3), msg(4)]);
      await room.loadEarlier();
      // Reconnected: the window moved on by one message, and 6 was deleted meanwhile.
      emit({ type: "opened", resource: M, where: W }, lastRows(msg(5), msg(7)));
      assert.deepEqual(Object.keys(rowsOf(room)), ["3", "4", "5", "7"]);
      room.dispose();
    });

    it("should fill a gap a windowed snapshot left before going on from the oldest row", async () => {
      const room = liveResource(socket, M, { where: W, last: 2 });
      emit(lastRows(msg(5), msg(6)));
      // Back after 10..13 were written: the window does not reach the rows held.
      emit(lastRows(msg(12), msg(13)));
      assert.deepEqual(Object.keys(rowsOf(room)), ["5", "6", "12", "13"]);
      assert.equal(room.complete.peek(), false);
      // 8 was deleted meanwhile; the third page reaches the rows held below the gap.
      respond([msg(10), msg(11)], [msg(7), msg(9)], [msg(5), msg(6)], [msg(3), msg(4)]);
      assert.equal(await room.loadEarlier(), 2);
      assert.equal(await room.loadEarlier(), 2);
      assert.equal(await room.loadEarlier(), 0);
      assert.equal(await room.loadEarlier(), 2);
      assert.deepEqual(fetchSpy.mock.calls.map((c) => c.arguments[0]), [
        "/api/messages?room=3&last=2&before=12",
        "/api/messages?room=3&last=2&before=10",
        "/api/messages?room=3&last=2&before=7",
        "/api/messages?room=3&last=2&before=5",
      ]);
      assert.deepEqual(Object.keys(rowsOf(room)).map(Number).sort((a, b) => a - b), [3, 4, 5, 6, 7, 9, 10, 11, 12, 13]);
      room.dispose();
    });

    it("should note no gap when the window's first row was held already", async () => {
      const room = liveResource(socket, M, { where: W, last: 2 });
      emit(lastRows(msg(5), msg(6)), { resource: M, where: W, action: "create", item: msg(7) });
      emit(lastRows(msg(6), msg(7)));
      respond([msg(3), msg(4)]);
      await room.loadEarlier();
      assert.equal(fetchSpy.mock.calls[0].arguments[0], "/api/messages?room=3&last=2&before=5");
      room.dispose();
    });
  });

  describe("complete", () => {
    it("should be true once a snapshot without a window was applied", () => {
      assert.equal(store.complete.peek(), false);
      emit(snapshot({ id: "a", version: 1 }));
      assert.equal(store.complete.peek(), true);
    });

    it("should follow a windowed snapshot's complete", () => {
      const small = liveResource(socket, M, { where: W, last: 50 });
      const large = liveResource(socket, M, { where: { room: 4 }, last: 2 });
      emit({ ...lastRows(msg(1)), last: 50, complete: true });
      socket.emit({ ...lastRows(msg(8), msg(9)), where: { room: 4 } });
      assert.equal(small.complete.peek(), true);
      assert.equal(large.complete.peek(), false);
      small.dispose();
      large.dispose();
    });

    it("should become true when loadEarlier gets fewer rows than the window, and then read no more", async () => {
      const room = liveResource(socket, M, { where: W, last: 2 });
      emit(lastRows(msg(5), msg(6)));
      const seen = [];
      effect(() => seen.push(room.complete.get()));
      respond([msg(3), msg(4)], [msg(2)]);
      await room.loadEarlier();
      assert.deepEqual(seen, [false]);
      assert.equal(await room.loadEarlier(), 1);
      assert.deepEqual(seen, [false, true]);
      assert.equal(await room.loadEarlier(), 0);
      assert.equal(fetchSpy.mock.callCount(), 2);
      room.dispose();
    });

    it("should stay true through a later windowed snapshot that keeps the rows below it", async () => {
      const room = liveResource(socket, M, { where: W, last: 2 });
      emit(lastRows(msg(5), msg(6)));
      respond([msg(4)]);
      await room.loadEarlier();
      emit(lastRows(msg(6), msg(7)));
      assert.equal(room.complete.peek(), true);
      room.dispose();
    });

    it("should turn false when a windowed snapshot leaves a gap, and true again once it is filled", async () => {
      const room = liveResource(socket, M, { where: W, last: 2 });
      emit({ ...lastRows(msg(5), msg(6)), complete: true });
      assert.equal(room.complete.peek(), true);
      emit(lastRows(msg(9), msg(10)));
      assert.equal(room.complete.peek(), false);
      respond([msg(7), msg(8)], [msg(5), msg(6)]);
      await room.loadEarlier();
      assert.equal(room.complete.peek(), false);
      await room.loadEarlier();
      assert.equal(room.complete.peek(), true);
      room.dispose();
    });
  });

  describe("closed by the server", () => {
    const forbidden = { type: "closed", resource: M, where: W, reason: "forbidden" };

    it("should hold the frame as its error, keep ready, clear its rows and take nothing more", async () => {
      const warn = mock.method(console, "warn", () => {});
      try {
        const room = liveResource(socket, M, { where: W, last: 2 });
        emit(lastRows(msg(5), msg(6)));
        const outer = mock.fn(() => room.items.get());
        effect(outer);
        emit(forbidden);
        assert.deepEqual(room.error.peek(), forbidden);
        assert.equal(room.ready.peek(), true);
        assert.equal(room.items.peek().size, 0);
        assert.equal(outer.mock.callCount(), 2);
        assert.equal(warn.mock.callCount(), 1);
        emit({ resource: M, where: W, action: "create", item: msg(7) }, lastRows(msg(7)));
        assert.equal(room.items.peek().size, 0);
        assert.equal(await room.loadEarlier(), 0);
        assert.equal(fetchSpy.mock.callCount(), 0);
        room.dispose();
      } finally {
        warn.mock.restore();
      }
    });

    it("should take a closed without a reason (a closedoc's answer) as nothing", () => {
      emit(snapshot({ id: "a", version: 1 }), { type: "closed", resource: R });
      assert.equal(store.error.peek(), null);
      assert.deepEqual(Object.keys(rowsOf(store)), ["a"]);
    });
  });

  describe("convergence", () => {
    it("should end in the database's state whatever the order of the events", () => {
      for (let seed = 1; seed <= 300; seed++) {
        const random = _prng(seed);
        const { events, final } = _history(random);
        for (const order of [events, _shuffle(events, random)]) {
          const s = new FakeSocket();
          const live = liveResource(s, R);
          for (const event of order) s.emit(event);
          assert.deepEqual(rowsOf(live), final, `seed ${seed}`);
          live.dispose();
        }
      }
    });

    it("should end in the database's state across a reconnect with a snapshot", () => {
      for (let seed = 1; seed <= 300; seed++) {
        const random = _prng(seed);
        const { events, final, states } = _history(random);
        const cut = Math.floor(random() * (events.length + 1));
        // Before the reconnect, some events up to the cut arrived in any order; then the
        // snapshot of the cut; then every later event, in any order.
        const before = _shuffle(events.slice(0, cut).filter(() => random() < 0.6), random);
        const after = _shuffle(events.slice(cut), random);
        const s = new FakeSocket();
        const live = liveResource(s, R);
        for (const event of [...before, snapshot(...Object.values(states[cut])), ...after]) s.emit(event);
        assert.deepEqual(rowsOf(live), final, `seed ${seed}`);
        live.dispose();
      }
    });

    it("should end in the database's state from a windowed snapshot's first row on, across a reconnect", () => {
      // Rows sort in the order they were created (r0, r1, ...), as messages do.
      const order = (a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1));
      for (let seed = 1; seed <= 300; seed++) {
        const random = _prng(seed);
        const { events, final, states } = _history(random);
        const cut = Math.floor(random() * (events.length + 1));
        const before = _shuffle(events.slice(0, cut).filter(() => random() < 0.6), random);
        const after = _shuffle(events.slice(cut), random);
        const size = 1 + Math.floor(random() * 4);
        const all = Object.values(states[cut]).sort(order);
        const latest = all.slice(-size);
        const frame = { ...snapshot(...latest), last: size, ...(all.length <= size ? { complete: true } : {}) };
        const s = new FakeSocket();
        const live = liveResource(s, R, { last: size, order });
        for (const event of [...before, frame, ...after]) s.emit(event);
        // Older rows the client held stay (their deletes while away are not known); from
        // the window's first row on, and for a complete window everywhere, it is exact.
        const from = (rows) => Object.fromEntries(Object.entries(rows).filter(([, row]) => !latest.length || frame.complete || order(row, latest[0]) >= 0));
        assert.deepEqual(from(rowsOf(live)), from(final), `seed ${seed}`);
        live.dispose();
      }
    });

    it("should end in the database's state with a snapshot split over frames, events between them", () => {
      for (let seed = 1; seed <= 300; seed++) {
        const random = _prng(seed);
        const { events, final, states } = _history(random);
        const cut = Math.floor(random() * (events.length + 1));
        const before = _shuffle(events.slice(0, cut).filter(() => random() < 0.6), random);
        const after = _shuffle(events.slice(cut), random);
        // The snapshot of the cut in up to four frames, in any order of rows, and some
        // later events between the frames (which the server avoids, but may not).
        const items = _shuffle(Object.values(states[cut]), random);
        const frames = [];
        for (let start = 0; start < items.length || !frames.length;) {
          const size = Math.ceil(random() * Math.max(1, items.length / 2));
          frames.push({ ...snapshot(...items.slice(start, start + size)), more: true });
          start += size;
        }
        delete frames.at(-1).more;
        const sequence = [...before, opened];
        for (const frame of frames) {
          sequence.push(frame);
          while (after.length && random() < 0.3) sequence.push(after.shift());
        }
        const s = new FakeSocket();
        const live = liveResource(s, R);
        for (const event of [...sequence, ...after]) s.emit(event);
        assert.deepEqual(rowsOf(live), final, `seed ${seed}`);
        live.dispose();
      }
    });
  });
});

/** A small seeded generator (xorshift32), so a failing seed can be replayed. */
function _prng(seed) {
  let x = seed * 2654435761 >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function _shuffle(list, random) {
  const copy = [...list];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

/**
 * A random history of writes, as a database would commit and publish them: the
 * events, the final rows, and the rows after each event (states[k]: after k events).
 */
function _history(random) {
  const rows = new Map();
  const events = [];
  const states = [{}];
  let nextId = 0;
  const pick = (list) => list[Math.floor(random() * list.length)];
  const snapshotOf = () => Object.fromEntries([...rows].map(([id, row]) => [id, { ...row }]));
  const steps = 10 + Math.floor(random() * 40);
  for (let step = 0; step < steps; step++) {
    const roll = random();
    if (!rows.size || roll < 0.25) {
      const id = `r${nextId++}`;
      const row = { id, title: pick(["a", "b", "c"]), done: random() < 0.5, n: Math.floor(random() * 3), version: 1 };
      rows.set(id, row);
      events.push(create({ ...row }));
    } else if (roll < 0.85) {
      const row = rows.get(pick([...rows.keys()]));
      const fields = {};
      if (random() < 0.5) fields.title = pick(["a", "b", "c", "d"]);
      if (random() < 0.5) fields.done = random() < 0.5;
      if (random() < 0.5) fields.n = Math.floor(random() * 3);
      for (const key of Object.keys(fields)) if (fields[key] === row[key]) delete fields[key];
      if (!Object.keys(fields).length) continue; // a save that changes nothing publishes nothing
      Object.assign(row, fields);
      row.version++;
      events.push(update(row.id, fields, row.version));
    } else {
      const row = rows.get(pick([...rows.keys()]));
      rows.delete(row.id);
      events.push(remove(row.id, row.version + 1));
    }
    states.push(snapshotOf());
  }
  return { events, final: snapshotOf(), states };
}

describe("liveResource over a LiveSocket", () => {
  it("should resync by snapshot after a reconnect, keeping the rows that stayed", async (t) => {
    const { connect } = await import("../../paintbrush/static/paintbrush/socket.js");
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const instances = [];
    class WS {
      constructor() {
        this.sent = [];
        instances.push(this);
      }

      send(data) {
        this.sent.push(JSON.parse(data));
      }

      close() {}
    }
    const receive = (message) => instances.at(-1).onmessage({ data: JSON.stringify(message) });
    const live = connect("ws://test/ws", { WebSocket: WS });
    const todos = liveResource(live, R);
    instances[0].onopen();
    assert.deepEqual(instances[0].sent, [{ action: "opendoc", resource: R, snapshot: true }]);
    receive({ type: "opened", resource: R });
    receive(snapshot({ id: "a", title: "A", version: 1 }, { id: "b", title: "B", version: 1 }));
    const rowA = todos.items.peek().get("a");
    instances[0].onclose();
    t.mock.timers.tick(30000);
    instances[1].onopen();
    assert.deepEqual(instances[1].sent, [{ action: "opendoc", resource: R, snapshot: true }]);
    receive(snapshot({ id: "a", title: "A2", version: 2 }, { id: "c", title: "C", version: 1 }));
    assert.deepEqual(Object.keys(rowsOf(todos)), ["a", "c"]);
    assert.equal(todos.items.peek().get("a"), rowA);
    assert.equal(rowA.peek().title, "A2");
    todos.dispose();
    assert.deepEqual(instances[1].sent.at(-1), { action: "closedoc", resource: R });
    live.close();
  });

  it("should resync on the server's request, by a split snapshot on the same connection", async () => {
    const { connect } = await import("../../paintbrush/static/paintbrush/socket.js");
    let ws;
    class WS {
      constructor() {
        ws = this;
        this.sent = [];
      }

      send(data) {
        this.sent.push(JSON.parse(data));
      }

      close() {}
    }
    const receive = (message) => ws.onmessage({ data: JSON.stringify(message) });
    const live = connect("ws://test/ws", { WebSocket: WS });
    const todos = liveResource(live, R);
    ws.onopen();
    receive(opened);
    receive(snapshot({ id: "a", title: "A", version: 1 }, { id: "b", title: "B", version: 1 }));
    const rowB = todos.items.peek().get("b");
    receive({ type: "resync", resource: R, reason: "a message was lost" });
    assert.deepEqual(ws.sent.at(-1), { action: "opendoc", resource: R, snapshot: true });
    assert.equal(live.resyncs.peek(), 1);
    receive(opened);
    receive(partial({ id: "c", title: "C", version: 1 }));
    receive(snapshot({ id: "b", title: "B2", version: 2 }));
    assert.deepEqual(rowsOf(todos), { b: { id: "b", title: "B2", version: 2 }, c: { id: "c", title: "C", version: 1 } });
    assert.equal(todos.items.peek().get("b"), rowB);
    assert.equal(ws.sent.length, 2);
    todos.dispose();
    live.close();
  });

  describe("with scopes", () => {
    /** A LiveSocket on a fake WebSocket the test drives: its instances, and receive(). */
    async function liveSocket() {
      const { connect } = await import("../../paintbrush/static/paintbrush/socket.js");
      const instances = [];
      class WS {
        constructor() {
          this.sent = [];
          instances.push(this);
        }

        send(data) {
          this.sent.push(JSON.parse(data));
        }

        close() {}
      }
      const live = connect("ws://test/ws", { WebSocket: WS, random: () => 0.5 });
      const receive = (...messages) => {
        for (const message of messages) instances.at(-1).onmessage({ data: JSON.stringify(message) });
      };
      return { live, instances, receive };
    }

    const opendoc = (room, last) => ({ action: "opendoc", resource: M, where: { room }, snapshot: true, last });

    it("should keep two scopes of a resource apart on one socket, and close one with its where", async () => {
      const { live, instances, receive } = await liveSocket();
      const three = liveResource(live, M, { where: { room: 3 }, last: 50 });
      const four = liveResource(live, M, { where: { room: 4 }, last: 50 });
      instances[0].onopen();
      assert.deepEqual(instances[0].sent, [opendoc(3, 50), opendoc(4, 50)]);
      receive(
        { type: "opened", resource: M, where: { room: 3 } },
        { resource: M, where: { room: 3 }, action: "snapshot", items: [msg(1)], last: 50, complete: true },
        { type: "opened", resource: M, where: { room: 4 } },
        { resource: M, where: { room: 4 }, action: "snapshot", items: [{ ...msg(2), room: 4 }], last: 50, complete: true },
        { resource: M, where: { room: 4 }, action: "create", item: { ...msg(3), room: 4 } },
      );
      assert.deepEqual(Object.keys(rowsOf(three)), ["1"]);
      assert.deepEqual(Object.keys(rowsOf(four)), ["2", "3"]);
      three.dispose();
      assert.deepEqual(instances[0].sent.at(-1), { action: "closedoc", resource: M, where: { room: 3 } });
      receive({ resource: M, where: { room: 4 }, action: "delete", id: 3, version: 2 });
      assert.deepEqual(Object.keys(rowsOf(four)), ["2"]);
      four.dispose();
      live.close();
    });

    it("should re-open each scope with its window after a reconnect, keeping the rows loaded earlier", async (t) => {
      t.mock.timers.enable({ apis: ["setTimeout"] });
      const { live, instances, receive } = await liveSocket();
      const three = liveResource(live, M, { where: { room: 3 }, last: 2 });
      const four = liveResource(live, M, { where: { room: 4 }, last: 10 });
      instances[0].onopen();
      receive({ resource: M, where: { room: 3 }, action: "snapshot", items: [msg(5), msg(6)], last: 2 });
      respond([msg(3), msg(4)]);
      await three.loadEarlier();
      instances[0].onclose();
      t.mock.timers.tick(5000);
      instances[1].onopen();
      assert.deepEqual(instances[1].sent, [opendoc(3, 2), opendoc(4, 10)]);
      receive(
        { type: "opened", resource: M, where: { room: 3 } },
        { resource: M, where: { room: 3 }, action: "snapshot", items: [msg(6), msg(7)], last: 2 },
      );
      assert.deepEqual(Object.keys(rowsOf(three)), ["3", "4", "5", "6", "7"]);
      three.dispose();
      four.dispose();
      live.close();
    });

    it("should re-open a scope with its window on the server's resync", async () => {
      const { live, instances, receive } = await liveSocket();
      const three = liveResource(live, M, { where: { room: 3 }, last: 2 });
      instances[0].onopen();
      receive({ type: "resync", resource: M, where: { room: 3 }, reason: "lost" });
      assert.deepEqual(instances[0].sent, [opendoc(3, 2), opendoc(3, 2)]);
      three.dispose();
      live.close();
    });

    it("should end a scope the server closes: error, no rows, not re-opened, no closedoc", async (t) => {
      t.mock.timers.enable({ apis: ["setTimeout"] });
      const warn = mock.method(console, "warn", () => {});
      try {
        const { live, instances, receive } = await liveSocket();
        const three = liveResource(live, M, { where: { room: 3 }, last: 2 });
        const four = liveResource(live, M, { where: { room: 4 }, last: 2 });
        instances[0].onopen();
        receive({ resource: M, where: { room: 3 }, action: "snapshot", items: [msg(5)], last: 2, complete: true });
        const closed = { type: "closed", resource: M, where: { room: 3 }, reason: "forbidden" };
        receive(closed);
        assert.deepEqual(three.error.peek(), closed);
        assert.equal(three.ready.peek(), true);
        assert.equal(three.items.peek().size, 0);
        assert.equal(four.error.peek(), null);
        instances[0].onclose();
        t.mock.timers.tick(5000);
        instances[1].onopen();
        assert.deepEqual(instances[1].sent, [opendoc(4, 2)]);
        three.dispose();
        assert.deepEqual(instances[1].sent, [opendoc(4, 2)]);
        four.dispose();
        live.close();
      } finally {
        warn.mock.restore();
      }
    });
  });
});
