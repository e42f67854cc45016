import { describe, it, mock } from "node:test";
import assert from "node:assert/strict";

import { sharedStore } from "../../paintbrush/static/paintbrush/stores.js";

/** A create() whose stores count their dispose() calls. */
function factory() {
  return mock.fn(() => {
    const store = { disposed: 0, dispose: () => store.disposed++ };
    return store;
  });
}

describe("sharedStore", () => {
  it("should build the store for the first holder and give later holders the same one", () => {
    const socket = {};
    const create = factory();
    const [first, releaseFirst] = sharedStore(socket, "resource:todos", create);
    const [second, releaseSecond] = sharedStore(socket, "resource:todos", create);
    assert.equal(second, first);
    assert.equal(create.mock.callCount(), 1);
    releaseFirst();
    releaseSecond();
  });

  it("should dispose the store when the last holder releases it, and not before", () => {
    const socket = {};
    const [store, releaseFirst] = sharedStore(socket, "doc", factory());
    const [, releaseSecond] = sharedStore(socket, "doc", factory());
    releaseFirst();
    assert.equal(store.disposed, 0);
    releaseSecond();
    assert.equal(store.disposed, 1);
  });

  it("should not let a holder that releases twice drop another holder's reference", () => {
    const socket = {};
    const [store, releaseFirst] = sharedStore(socket, "doc", factory());
    const [, releaseSecond] = sharedStore(socket, "doc", factory());
    releaseFirst();
    releaseFirst();
    assert.equal(store.disposed, 0);
    releaseSecond();
    releaseSecond();
    assert.equal(store.disposed, 1);
  });

  it("should build a fresh store for a key after its last release, which a stale release leaves alone", () => {
    const socket = {};
    const create = factory();
    const [old, releaseOld] = sharedStore(socket, "doc", create);
    releaseOld();
    const [fresh, releaseFresh] = sharedStore(socket, "doc", create);
    assert.notEqual(fresh, old);
    assert.equal(create.mock.callCount(), 2);
    releaseOld();
    assert.equal(fresh.disposed, 0);
    releaseFresh();
    assert.equal(fresh.disposed, 1);
    assert.equal(old.disposed, 1);
  });

  it("should keep the stores of different keys on one socket apart", () => {
    const socket = {};
    const [todos, releaseTodos] = sharedStore(socket, "resource:todos", factory());
    const [doc, releaseDoc] = sharedStore(socket, "doc", factory());
    assert.notEqual(doc, todos);
    releaseTodos();
    assert.equal(doc.disposed, 0);
    releaseDoc();
  });

  it("should keep the stores of one key on different sockets apart", () => {
    const create = factory();
    const [a, releaseA] = sharedStore({}, "doc", create);
    const [b, releaseB] = sharedStore({}, "doc", create);
    assert.notEqual(b, a);
    assert.equal(create.mock.callCount(), 2);
    releaseA();
    assert.equal(b.disposed, 0);
    releaseB();
  });

  it("should hold nothing for a key whose create() threw, so the next call builds it", () => {
    const socket = {};
    assert.throws(() => sharedStore(socket, "doc", () => { throw new Error("boom"); }), /boom/);
    const create = factory();
    const [store, release] = sharedStore(socket, "doc", create);
    assert.equal(create.mock.callCount(), 1);
    release();
    assert.equal(store.disposed, 1);
  });
});
