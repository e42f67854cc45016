import { afterEach, beforeEach, describe, it, mock } from "node:test";
import assert from "node:assert/strict";

import { effect } from "../../paintbrush/static/paintbrush/signals.js";
import { liveResource } from "../../paintbrush/static/paintbrush/live.js";

/** The part of a LiveSocket that liveResource uses, driven by the test. */
class FakeSocket {
  constructor() {
    this.handlers = new Map();
    this.subscribeCalls = 0;
    this.unsubscribeCalls = 0;
  }

  subscribe(resource, handler) {
    this.subscribeCalls++;
    this.handlers.set(resource, handler);
    return () => {
      this.unsubscribeCalls++;
      this.handlers.delete(resource);
    };
  }

  emit(message) {
    this.handlers.get(message.resource ?? message.request?.resource)?.(message);
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

let socket;
let store;

function emit(...messages) {
  for (const message of messages) socket.emit(message);
}

beforeEach(() => {
  socket = new FakeSocket();
  store = liveResource(socket, R);
});

afterEach(() => store.dispose());

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
});
