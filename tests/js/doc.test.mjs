import { afterEach, beforeEach, describe, it, mock } from "node:test";
import assert from "node:assert/strict";

import { computed, effect } from "../../paintbrush/static/paintbrush/signals.js";
import { connect } from "../../paintbrush/static/paintbrush/socket.js";
import { liveDoc } from "../../paintbrush/static/paintbrush/doc.js";
import { shop } from "./shop-document.mjs";

/** The part of a LiveSocket that liveDoc uses, driven by the test. */
class FakeSocket {
  constructor() {
    this.handlers = new Map();
    this.subscribed = [];
    this.options = [];
    this.reopened = [];
    this.unsubscribeCalls = 0;
  }

  subscribe(resource, handler, options) {
    this.subscribed.push(resource);
    this.options.push(options);
    this.handlers.set(resource, handler);
    return () => {
      this.unsubscribeCalls++;
      this.handlers.delete(resource);
    };
  }

  reopen(resource) {
    this.reopened.push(resource);
  }

  emit(message) {
    this.handlers.get("doc")?.(message);
  }
}

let socket;
let live;

describe("liveDoc", () => {
  beforeEach(() => {
    socket = new FakeSocket();
    live = liveDoc(socket);
  });

  afterEach(() => live.dispose());

  it("should subscribe to the doc resource and hold null until the first push", () => {
    assert.deepEqual(socket.subscribed, ["doc"]);
    assert.deepEqual(socket.options, [undefined]);
    assert.equal(live.doc.peek(), null);
    assert.equal(live.ready.peek(), false);
    assert.equal(live.rev.peek(), null);
  });

  it("should set the document of every push, with ready, in one batch", () => {
    const seen = [];
    effect(() => seen.push([live.ready.get(), live.doc.get()?.orders.length ?? null]));
    socket.emit({ type: "opened", resource: "doc" });
    socket.emit({ type: "doc", doc: { role: "customer", orders: [] } });
    socket.emit({ type: "doc", doc: { role: "customer", orders: [{ id: 1 }] } });
    assert.deepEqual(seen, [[false, null], [true, 0], [true, 1]]);
    assert.equal(live.rev.peek(), null);
  });

  it("should take every whole document as it comes, identities and all, without patches (v1)", () => {
    const first = { role: "customer", orders: [], products: [] };
    const second = { role: "customer", orders: [], products: [] };
    socket.emit({ type: "doc", doc: first });
    assert.equal(live.doc.peek(), first);
    socket.emit({ type: "doc", doc: second });
    assert.equal(live.doc.peek(), second);
    assert.equal(live.rev.peek(), null);
    assert.deepEqual(socket.reopened, []);
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

// -- Patches (protocol v1.2, section 2c) --------------------------------------------------

const whole = (rev, doc = shop()) => ({ type: "doc", resource: "doc", doc, rev });
const patch = (rev, ...ops) => ({ type: "doc", resource: "doc", patch: ops, rev });
const ship = (index) => ({ op: "replace", path: `/orders/${index}/status`, value: "shipped" });

describe("liveDoc with patches", () => {
  let warn;

  beforeEach(() => {
    socket = new FakeSocket();
    live = liveDoc(socket, { patch: true });
    warn = mock.method(console, "warn", () => {});
  });

  afterEach(() => {
    live.dispose();
    warn.mock.restore();
  });

  it("should ask the socket for patches, and hold the first document with its revision", () => {
    assert.deepEqual(socket.subscribed, ["doc"]);
    assert.deepEqual(socket.options, [{ patch: true }]);
    assert.equal(live.rev.peek(), null);
    socket.emit({ type: "opened", resource: "doc" });
    const first = shop();
    socket.emit(whole(17, first));
    assert.equal(live.doc.peek(), first);
    assert.equal(live.rev.peek(), 17);
    assert.equal(live.ready.peek(), true);
  });

  it("should apply a patch to the revision before it, the document and revision in one batch", () => {
    socket.emit(whole(17));
    const seen = [];
    effect(() => seen.push([live.rev.get(), live.doc.get().orders[0].status]));
    socket.emit(patch(18, ship(0), { op: "replace", path: "/orders/0/quantity", value: 3 }));
    assert.deepEqual(seen, [[17, "pending"], [18, "shipped"]]);
    assert.equal(live.doc.peek().orders[0].quantity, 3);
    assert.deepEqual(socket.reopened, []);
  });

  it("should not run an effect that reads only the products when only orders changed", () => {
    socket.emit(whole(17));
    const products = computed(() => live.doc.get()?.products);
    let runs = 0;
    const stop = effect(() => {
      products.get();
      runs++;
    });
    assert.equal(runs, 1);
    const before = live.doc.peek();
    socket.emit(patch(18, ship(1)));
    socket.emit(patch(19, { op: "add", path: "/orders/-", value: { id: 13, user: 2, product: 7, quantity: 1, status: "pending" } }));
    assert.notEqual(live.doc.peek(), before);
    assert.equal(live.doc.peek().products, before.products);
    assert.equal(runs, 1);
    socket.emit(patch(20, { op: "replace", path: "/products/0/price", value: "8.99" }));
    assert.equal(runs, 2);
    assert.equal(products.peek()[0].price, "8.99");
    stop();
  });

  it("should make a new orders array for an order's change, keeping the unchanged orders", () => {
    const first = shop();
    socket.emit(whole(17, first));
    socket.emit(patch(18, ship(1)));
    const { orders, users, products } = live.doc.peek();
    assert.notEqual(orders, first.orders);
    assert.notEqual(orders[1], first.orders[1]);
    assert.equal(orders[1].status, "shipped");
    assert.equal(orders[0], first.orders[0]);
    assert.equal(orders[2], first.orders[2]);
    assert.equal(users, first.users);
    assert.equal(products, first.products);
    assert.equal(first.orders[1].status, "paid", "the document held before was changed");
  });

  it("should re-open on a gap once, ignoring patches until the whole document", () => {
    socket.emit(whole(17));
    const held = live.doc.peek();
    socket.emit(patch(19, ship(0))); // 18 was lost
    assert.deepEqual(socket.reopened, ["doc"]);
    assert.equal(warn.mock.callCount(), 1);
    socket.emit(patch(20, ship(1)));
    socket.emit(patch(18, ship(2))); // the revision after the one held, but held is stale now
    assert.deepEqual(socket.reopened, ["doc"]);
    assert.equal(live.doc.peek(), held);
    assert.equal(live.rev.peek(), 17);
    socket.emit({ type: "opened", resource: "doc" });
    const fresh = shop();
    fresh.orders[0].status = "shipped";
    socket.emit(whole(20, fresh));
    assert.equal(live.doc.peek(), fresh);
    assert.equal(live.rev.peek(), 20);
    socket.emit(patch(21, ship(1)));
    assert.equal(live.doc.peek().orders[1].status, "shipped");
    assert.equal(live.rev.peek(), 21);
    // A later gap re-opens again.
    socket.emit(patch(21, ship(2)));
    assert.deepEqual(socket.reopened, ["doc", "doc"]);
  });

  it("should re-open on a patch before any whole document", () => {
    socket.emit({ type: "opened", resource: "doc" });
    socket.emit(patch(18, ship(0)));
    assert.deepEqual(socket.reopened, ["doc"]);
    assert.equal(live.doc.peek(), null);
    assert.equal(live.ready.peek(), false);
  });

  it("should re-open on a patch that does not apply, keeping the document held", () => {
    socket.emit(whole(17));
    const held = live.doc.peek();
    socket.emit(patch(18, ship(0), { op: "test", path: "/role", value: "customer" }));
    assert.deepEqual(socket.reopened, ["doc"]);
    assert.equal(live.doc.peek(), held);
    assert.equal(held.orders[0].status, "pending");
    assert.equal(live.rev.peek(), 17);
    assert.match(warn.mock.calls[0].arguments[0], /does not apply/);
    socket.emit({ type: "doc", resource: "doc", patch: "nonsense", rev: 18 });
    assert.deepEqual(socket.reopened, ["doc"], "a second re-open while the first is on its way");
  });

  it("should let a whole document replace what is held, whatever its revision", () => {
    socket.emit(whole(17));
    const restarted = shop();
    socket.emit(whole(3, restarted)); // the server's revisions started over
    assert.equal(live.doc.peek(), restarted);
    assert.equal(live.rev.peek(), 3);
    socket.emit(patch(4, ship(0)));
    assert.equal(live.doc.peek().orders[0].status, "shipped");
    // A whole document without a revision (a server without patches): patches wait for one.
    socket.emit({ type: "doc", resource: "doc", doc: shop() });
    assert.equal(live.rev.peek(), null);
    socket.emit(patch(5, ship(1)));
    assert.deepEqual(socket.reopened, ["doc"]);
  });

  it("should take the document a resync brings, leaving the re-open to the socket", () => {
    socket.emit(whole(17));
    socket.emit({ type: "resync", resource: "doc", reason: "stale" });
    socket.emit(patch(18, ship(0))); // still the revision after the one held: applied
    assert.equal(live.rev.peek(), 18);
    socket.emit({ type: "opened", resource: "doc" });
    socket.emit(whole(18));
    assert.equal(live.doc.peek().orders[0].status, "pending");
    assert.deepEqual(socket.reopened, []);
    assert.equal(live.error.peek(), null);
  });

  it("should share one store per socket, the first call deciding whether patches are asked", () => {
    const second = liveDoc(socket);
    assert.equal(second.doc, live.doc);
    assert.equal(second.rev, live.rev);
    assert.deepEqual(socket.options, [{ patch: true }]);
    second.dispose();

    const other = new FakeSocket();
    const plain = liveDoc(other);
    const patched = liveDoc(other, { patch: true });
    assert.equal(patched.doc, plain.doc);
    assert.deepEqual(other.options, [undefined]);
    other.emit({ type: "doc", doc: { role: "admin" } });
    assert.deepEqual(patched.doc.peek(), { role: "admin" });
    assert.equal(patched.rev.peek(), null);
    plain.dispose();
    patched.dispose();
    assert.equal(other.unsubscribeCalls, 1);
  });

  it("should refuse patches on a socket that cannot re-open the document", () => {
    const subscribeOnly = { subscribe: () => () => {} };
    assert.throws(() => liveDoc(subscribeOnly, { patch: true }), TypeError);
    liveDoc(subscribeOnly).dispose();
  });
});

describe("liveDoc with patches on a LiveSocket", () => {
  /** A WebSocket class whose instances the test drives, as socket.test.mjs does. */
  class FakeWebSocket {
    static last = null;

    constructor(url) {
      this.url = url;
      this.sent = [];
      FakeWebSocket.last = this;
    }

    send(data) {
      this.sent.push(JSON.parse(data));
    }

    close() {}

    receive(message) {
      this.onmessage?.({ data: JSON.stringify(message) });
    }
  }

  const OPENDOC = { action: "opendoc", resource: "doc", patch: true };
  let liveSocket;
  let warn;

  beforeEach(() => {
    warn = mock.method(console, "warn", () => {});
    liveSocket = connect("ws://test/ws", { WebSocket: FakeWebSocket, random: () => 0.5 });
  });

  afterEach(() => {
    liveSocket.close();
    warn.mock.restore();
  });

  it("should open with patch, and open again with it on a gap, on a resync and on reconnecting", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    FakeWebSocket.last.onopen({});
    const store = liveDoc(liveSocket, { patch: true });
    const ws = FakeWebSocket.last;
    assert.deepEqual(ws.sent, [OPENDOC]);

    ws.receive({ type: "opened", resource: "doc" });
    ws.receive(whole(17));
    ws.receive(patch(18, ship(0)));
    assert.equal(store.doc.peek().orders[0].status, "shipped");

    ws.receive(patch(20, ship(1))); // 19 was lost
    ws.receive(patch(21, ship(2)));
    assert.deepEqual(ws.sent, [OPENDOC, OPENDOC]);
    ws.receive({ type: "opened", resource: "doc" });
    ws.receive(whole(21));
    assert.equal(store.rev.peek(), 21);
    ws.receive(patch(22, ship(2)));
    assert.equal(store.rev.peek(), 22);

    ws.receive({ type: "resync", resource: "doc", reason: "stale" });
    assert.deepEqual(ws.sent, [OPENDOC, OPENDOC, OPENDOC]);
    // A gap while the resync's re-open is on its way: that re-open answers it too.
    ws.receive(patch(24, ship(0)));
    assert.deepEqual(ws.sent, [OPENDOC, OPENDOC, OPENDOC]);
    ws.receive({ type: "opened", resource: "doc" });
    ws.receive(whole(24));
    assert.equal(store.rev.peek(), 24);

    ws.onclose({ code: 1006 });
    t.mock.timers.tick(30000);
    FakeWebSocket.last.onopen({});
    assert.deepEqual(FakeWebSocket.last.sent, [OPENDOC]);
    store.dispose();
    assert.deepEqual(FakeWebSocket.last.sent, [OPENDOC, { action: "closedoc", resource: "doc" }]);
  });
});
