import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { PatchError, applyPatch } from "../../paintbrush/static/paintbrush/patch.js";
import { shop } from "./shop-document.mjs";

/** Freeze `value` and everything in it: a mutation then throws (modules are strict). */
function deepFreeze(value) {
  if (value && typeof value === "object") {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** applyPatch on a frozen input, checking that the input is unchanged afterwards. */
function patched(document, ops) {
  const before = structuredClone(document);
  const after = applyPatch(deepFreeze(document), ops);
  assert.deepEqual(document, before, "the input was mutated");
  return after;
}

/** The PatchError of a patch that must fail, its input unchanged. */
function failure(document, ops) {
  const before = structuredClone(document);
  let caught;
  assert.throws(() => applyPatch(deepFreeze(document), ops), (err) => {
    caught = err;
    return err instanceof PatchError;
  });
  assert.deepEqual(document, before, "the input was mutated");
  return caught;
}

// The cases of RFC 6902, appendix A, each on a document of our own.
describe("applyPatch: the cases of RFC 6902 appendix A", () => {
  it("should add an object member (A.1)", () => {
    const after = patched({ name: "brush" }, [{ op: "add", path: "/price", value: "9.99" }]);
    assert.deepEqual(after, { name: "brush", price: "9.99" });
  });

  it("should add an array element before the one at the index (A.2)", () => {
    const after = patched({ colours: ["red", "blue"] }, [{ op: "add", path: "/colours/1", value: "green" }]);
    assert.deepEqual(after, { colours: ["red", "green", "blue"] });
  });

  it("should remove an object member (A.3)", () => {
    const after = patched({ name: "brush", stale: true }, [{ op: "remove", path: "/stale" }]);
    assert.deepEqual(after, { name: "brush" });
  });

  it("should remove an array element, shifting the ones after it (A.4)", () => {
    const after = patched({ sizes: [1, 2, 3, 4] }, [{ op: "remove", path: "/sizes/1" }]);
    assert.deepEqual(after, { sizes: [1, 3, 4] });
  });

  it("should replace a value (A.5)", () => {
    const after = patched({ status: "pending", id: 4 }, [{ op: "replace", path: "/status", value: "paid" }]);
    assert.deepEqual(after, { status: "paid", id: 4 });
  });

  it("should move a value from one object to another (A.6)", () => {
    const document = { draft: { title: "Easel", note: "tall" }, final: { title: "Easel" } };
    const after = patched(document, [{ op: "move", from: "/draft/note", path: "/final/note" }]);
    assert.deepEqual(after, { draft: { title: "Easel" }, final: { title: "Easel", note: "tall" } });
  });

  it("should move an array element (A.7)", () => {
    const after = patched({ queue: ["a", "b", "c", "d"] }, [{ op: "move", from: "/queue/1", path: "/queue/3" }]);
    assert.deepEqual(after, { queue: ["a", "c", "d", "b"] });
  });

  it("should pass a test that holds, changing nothing (A.8)", () => {
    const document = { tag: "x", list: [1, { deep: [true, null] }] };
    const after = patched(document, [
      { op: "test", path: "/tag", value: "x" },
      { op: "test", path: "/list", value: [1, { deep: [true, null] }] },
    ]);
    assert.equal(after, document);
  });

  it("should fail a test that does not hold (A.9)", () => {
    const err = failure({ tag: "x" }, [{ op: "test", path: "/tag", value: "y" }]);
    assert.equal(err.index, 0);
    assert.match(err.message, /test failed/);
  });

  it("should add a nested object as one value (A.10)", () => {
    const after = patched({ id: 1 }, [{ op: "add", path: "/meta", value: { tags: { sale: true } } }]);
    assert.deepEqual(after, { id: 1, meta: { tags: { sale: true } } });
  });

  it("should ignore members of an operation it does not know (A.11)", () => {
    const after = patched({ id: 1 }, [{ op: "add", path: "/qty", value: 3, comment: "ignored", xyz: [1] }]);
    assert.deepEqual(after, { id: 1, qty: 3 });
  });

  it("should refuse to add under a parent that does not exist (A.12)", () => {
    const err = failure({ id: 1 }, [{ op: "add", path: "/missing/child", value: 0 }]);
    assert.match(err.message, /does not exist/);
  });

  it("should read ~0 as ~ and ~1 as / in a pointer (A.14)", () => {
    const document = { "a/b": 1, "m~n": 2, "~1": 3 };
    const after = patched(document, [
      { op: "test", path: "/a~1b", value: 1 },
      { op: "test", path: "/m~0n", value: 2 },
      { op: "test", path: "/~01", value: 3 },
      { op: "replace", path: "/m~0n", value: 20 },
    ]);
    assert.deepEqual(after, { "a/b": 1, "m~n": 20, "~1": 3 });
  });

  it("should not take a string for the number it spells in a test (A.15)", () => {
    failure({ count: 10 }, [{ op: "test", path: "/count", value: "10" }]);
  });

  it("should add an array as one element at the end with - (A.16)", () => {
    const after = patched({ rows: ["x"] }, [{ op: "add", path: "/rows/-", value: ["y", "z"] }]);
    assert.deepEqual(after, { rows: ["x", ["y", "z"]] });
  });
});

describe("applyPatch: operations", () => {
  it("should replace a member that exists, and add one that does not, in their places", () => {
    const after = patched({ a: 1, b: 2 }, [{ op: "add", path: "/a", value: 10 }, { op: "add", path: "/c", value: 3 }]);
    assert.deepEqual(Object.entries(after), [["a", 10], ["b", 2], ["c", 3]]);
  });

  it("should add at the array's length, and refuse beyond it", () => {
    assert.deepEqual(patched([1, 2], [{ op: "add", path: "/2", value: 3 }]), [1, 2, 3]);
    assert.deepEqual(patched([], [{ op: "add", path: "/-", value: 1 }]), [1]);
    assert.match(failure([1, 2], [{ op: "add", path: "/3", value: 3 }]).message, /out of bounds/);
  });

  it("should refuse indexes with leading zeros, signs or letters, and - but for add", () => {
    for (const path of ["/01", "/-1", "/+1", "/1e0", "/x", "/ 1"]) {
      assert.match(failure([0, 1, 2], [{ op: "replace", path, value: 9 }]).message, /not an array index/, path);
    }
    failure([0], [{ op: "remove", path: "/-" }]);
    failure([0], [{ op: "replace", path: "/-", value: 1 }]);
    failure([0], [{ op: "test", path: "/-", value: 0 }]);
  });

  it("should refuse to remove or replace what does not exist", () => {
    failure({ a: 1 }, [{ op: "remove", path: "/b" }]);
    failure({ a: 1 }, [{ op: "replace", path: "/b", value: 2 }]);
    failure({ a: [1] }, [{ op: "remove", path: "/a/1" }]);
    failure({ a: 1 }, [{ op: "replace", path: "/a/b", value: 2 }]);
    failure({ a: null }, [{ op: "add", path: "/a/b", value: 2 }]);
  });

  it("should read only a document's own members, not its prototype's", () => {
    failure({}, [{ op: "remove", path: "/constructor" }]);
    failure({}, [{ op: "test", path: "/toString", value: null }]);
    failure({}, [{ op: "add", path: "/constructor/x", value: 1 }]);
  });

  it("should add a member named __proto__ as a member, leaving the prototype alone", () => {
    const after = patched({}, [{ op: "add", path: "/__proto__", value: { polluted: true } }]);
    assert.equal(Object.getPrototypeOf(after), Object.prototype);
    assert.equal(after.polluted, undefined);
    assert.deepEqual(Object.keys(after), ["__proto__"]);
    assert.equal(({}).polluted, undefined);
    const replaced = applyPatch(after, [{ op: "replace", path: "/__proto__/polluted", value: false }]);
    assert.equal(Object.getPrototypeOf(replaced), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(replaced, "__proto__").value, { polluted: false });
  });

  it("should take the empty pointer as the whole document, and / as the member named ''", () => {
    const document = { a: 1 };
    assert.deepEqual(patched(document, [{ op: "replace", path: "", value: { b: 2 } }]), { b: 2 });
    assert.deepEqual(patched(document, [{ op: "add", path: "", value: [1] }]), [1]);
    assert.deepEqual(patched({ "": 0 }, [{ op: "replace", path: "/", value: 5 }]), { "": 5 });
    assert.match(failure(document, [{ op: "remove", path: "" }]).message, /whole document/);
  });

  it("should move a value to where it is as nothing, and refuse to move it into itself", () => {
    const document = { a: { b: 1 } };
    assert.equal(patched(document, [{ op: "move", from: "/a", path: "/a" }]), document);
    assert.match(failure(document, [{ op: "move", from: "/a", path: "/a/b/c" }]).message, /into itself/);
    failure(document, [{ op: "move", from: "/x", path: "/x" }]);
    failure(document, [{ op: "move", from: "/x", path: "/y" }]);
  });

  it("should move a member up into the place of its parent", () => {
    assert.deepEqual(patched({ a: { b: { c: 1 } } }, [{ op: "move", from: "/a/b", path: "/a" }]), { a: { c: 1 } });
  });

  it("should copy a value, the two places changing apart afterwards", () => {
    const document = { a: { list: [1] }, b: null };
    const after = patched(document, [
      { op: "replace", path: "/a/list/0", value: 2 }, // /a and its list are now this call's copies
      { op: "copy", from: "/a", path: "/b" },
      { op: "add", path: "/b/list/-", value: 3 },
      { op: "add", path: "/a/x", value: 0 },
    ]);
    assert.deepEqual(after, { a: { list: [2], x: 0 }, b: { list: [2, 3] } });
  });

  it("should copy the whole document into itself without making a cycle", () => {
    const after = patched({ a: 1 }, [{ op: "copy", from: "", path: "/self" }, { op: "add", path: "/self/b", value: 2 }]);
    assert.deepEqual(after, { a: 1, self: { a: 1, b: 2 } });
  });

  it("should compare objects in a test whatever their key order, and arrays in order", () => {
    const document = { o: { x: 1, y: [1, 2] } };
    patched(document, [{ op: "test", path: "/o", value: { y: [1, 2], x: 1 } }]);
    failure(document, [{ op: "test", path: "/o", value: { x: 1, y: [2, 1] } }]);
    failure(document, [{ op: "test", path: "/o", value: { x: 1, y: [1, 2], z: null } }]);
    failure(document, [{ op: "test", path: "/o", value: { x: 1 } }]);
    failure({ v: null }, [{ op: "test", path: "/v", value: {} }]);
    failure({ v: [] }, [{ op: "test", path: "/v", value: {} }]);
  });

  it("should refuse malformed patches and operations, naming the operation", () => {
    assert.equal(failure({}, { op: "add", path: "/a", value: 1 }).index, -1);
    const err = failure({ a: 1 }, [{ op: "test", path: "/a", value: 1 }, { op: "add", path: "/b" }]);
    assert.equal(err.index, 1);
    assert.deepEqual(err.operation, { op: "add", path: "/b" });
    assert.match(err.message, /^operation 1 \(add "\/b"\): "value" is missing$/);
    failure({}, [{ op: "frobnicate", path: "/a" }]);
    failure({}, [{ path: "/a", value: 1 }]);
    failure({}, [null]);
    failure({}, [{ op: "add", path: "a", value: 1 }]);
    failure({}, [{ op: "add", path: 1, value: 1 }]);
    failure({ a: 1 }, [{ op: "copy", path: "/b" }]);
    failure({ "~2": 1 }, [{ op: "remove", path: "/~2" }]);
  });

  it("should void the whole patch when a later operation fails", () => {
    const document = { a: 1, list: [1] };
    failure(document, [{ op: "replace", path: "/a", value: 2 }, { op: "add", path: "/list/-", value: 2 }, { op: "remove", path: "/nope" }]);
  });
});

describe("applyPatch: structural sharing", () => {
  it("should copy the containers on the changed path and share everything else", () => {
    const before = shop();
    const after = patched(before, [{ op: "replace", path: "/orders/1/status", value: "shipped" }]);
    assert.notEqual(after, before);
    assert.notEqual(after.orders, before.orders);
    assert.notEqual(after.orders[1], before.orders[1]);
    assert.equal(after.orders[1].status, "shipped");
    assert.equal(before.orders[1].status, "paid");
    assert.equal(after.orders[0], before.orders[0]);
    assert.equal(after.orders[2], before.orders[2]);
    assert.equal(after.products, before.products);
    assert.equal(after.users, before.users);
  });

  it("should keep the identity of the items an insertion or a removal shifts", () => {
    const before = shop();
    const after = patched(before, [
      { op: "remove", path: "/orders/0" },
      { op: "add", path: "/orders/-", value: { id: 13, user: 2, product: 7, quantity: 5, status: "pending" } },
    ]);
    assert.deepEqual(after.orders.map((o) => o.id), [11, 12, 13]);
    assert.equal(after.orders[0], before.orders[1]);
    assert.equal(after.orders[1], before.orders[2]);
    assert.equal(after.products, before.products);
  });

  it("should return the document itself when nothing changes", () => {
    const before = shop();
    assert.equal(patched(before, []), before);
    assert.equal(patched(before, [{ op: "test", path: "/role", value: "admin" }]), before);
    // Setting a value to what it is copies nothing either.
    assert.equal(patched(before, [{ op: "replace", path: "/products/0/price", value: "9.99" }]), before);
  });

  it("should copy each container once per patch, however many operations touch it", () => {
    const copies = { root: 0, orders: 0 };
    const before = shop();
    // Proxies that count their copies: an object is copied by reading its keys, an array by slice.
    const orders = new Proxy(before.orders, {
      get(target, key, receiver) {
        if (key === "slice") copies.orders++;
        return Reflect.get(target, key, receiver);
      },
    });
    const root = new Proxy({ ...before, orders }, {
      ownKeys(target) {
        copies.root++;
        return Reflect.ownKeys(target);
      },
    });
    const ops = [];
    for (let i = 0; i < 50; i++) ops.push({ op: "replace", path: `/orders/${i % 3}/quantity`, value: i + 100 });
    ops.push({ op: "add", path: "/orders/-", value: { id: 99 } }, { op: "remove", path: "/orders/3" });
    const after = applyPatch(root, ops);
    assert.deepEqual(copies, { root: 1, orders: 1 });
    assert.deepEqual(after.orders.map((o) => o.quantity), [148, 149, 147]);
    assert.equal(after.products, before.products);
    assert.deepEqual(before.orders.map((o) => o.quantity), [1, 2, 1]);
  });

  it("should not share one of its copies between the two places of a copy", () => {
    const before = shop();
    const after = patched(before, [
      { op: "replace", path: "/products/0/price", value: "8.99" },
      { op: "copy", from: "/products/0", path: "/featured" },
      { op: "replace", path: "/featured/price", value: "7.99" },
    ]);
    assert.equal(after.products[0].price, "8.99");
    assert.equal(after.featured.price, "7.99");
    assert.equal(after.products[1], before.products[1]);
  });

  it("should not mutate the values of the operations it puts into the document", () => {
    const value = deepFreeze({ id: 13, tags: ["new"] });
    const ops = deepFreeze([
      { op: "add", path: "/orders/-", value },
      { op: "add", path: "/orders/3/tags/-", value: "rush" },
    ]);
    const after = patched(shop(), ops);
    assert.deepEqual(after.orders[3], { id: 13, tags: ["new", "rush"] });
    assert.deepEqual(value, { id: 13, tags: ["new"] });
  });
});
