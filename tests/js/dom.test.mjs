import { beforeEach, describe, it, mock } from "node:test";
import assert from "node:assert/strict";

import { effect, signal } from "../../paintbrush/static/paintbrush/signals.js";
import { escapeHtml, renderList } from "../../paintbrush/static/paintbrush/dom.js";

/** The few DOM element features renderList relies on, counting the moves. */
class FakeElement {
  constructor(tag) {
    this.tagName = tag;
    this.childNodes = [];
    this.parentNode = null;
    this.attributes = new Map();
    this.textContent = "";
    this.inserts = 0; // insertBefore calls on this element as a container
  }

  setAttribute(name, value) {
    this.attributes.set(name, String(value));
  }

  getAttribute(name) {
    return this.attributes.get(name) ?? null;
  }

  insertBefore(node, reference) {
    this.inserts++;
    node.remove();
    const index = reference ? this.childNodes.indexOf(reference) : this.childNodes.length;
    assert.ok(index >= 0, "the reference node must be a child");
    this.childNodes.splice(index, 0, node);
    node.parentNode = this;
    return node;
  }

  remove() {
    if (!this.parentNode) return;
    const siblings = this.parentNode.childNodes;
    siblings.splice(siblings.indexOf(this), 1);
    this.parentNode = null;
  }
}

let container;
let items;
let renders;
let rowRuns;
let rowCleanups;

/** A renderItem as a page writes one: an element and an inner effect reading the row. */
function renderItem(item, id) {
  renders.push(id);
  const li = new FakeElement("li");
  effect(() => {
    li.textContent = item.get().title;
    rowRuns.set(id, (rowRuns.get(id) ?? 0) + 1);
    return () => rowCleanups.set(id, (rowCleanups.get(id) ?? 0) + 1);
  });
  return li;
}

const rowsOf = (entries) => new Map(entries.map(([id, title, rank = 0]) => [id, signal({ id, title, rank })]));
const texts = () => container.childNodes.map((node) => node.textContent);
const ids = () => container.childNodes.map((node) => node.getAttribute("data-id"));

beforeEach(() => {
  container = new FakeElement("ul");
  items = signal(rowsOf([["a", "A"], ["b", "B"]]));
  renders = [];
  rowRuns = new Map();
  rowCleanups = new Map();
});

function add(id, title, rank = 0) {
  items.set(new Map(items.peek()).set(id, signal({ id, title, rank })));
}

function drop(id) {
  const next = new Map(items.peek());
  next.delete(id);
  items.set(next);
}

describe("renderList", () => {
  it("should render one element per row, in order, with data-id", () => {
    renderList(container, items, renderItem);
    assert.deepEqual(texts(), ["A", "B"]);
    assert.deepEqual(ids(), ["a", "b"]);
  });

  it("should keep an element and re-run only that row's effect when a row changes", () => {
    renderList(container, items, renderItem);
    const [first, second] = container.childNodes;
    const inserts = container.inserts;
    items.peek().get("a").set({ id: "a", title: "A2" });
    assert.deepEqual(texts(), ["A2", "B"]);
    assert.equal(container.childNodes[0], first);
    assert.equal(container.childNodes[1], second);
    assert.deepEqual([...rowRuns], [["a", 2], ["b", 1]]);
    assert.equal(container.inserts, inserts);
    assert.deepEqual(renders, ["a", "b"]);
  });

  it("should render only the added row, touching no other element", () => {
    renderList(container, items, renderItem);
    const [first, second] = container.childNodes;
    const inserts = container.inserts;
    add("c", "C");
    assert.deepEqual(renders, ["a", "b", "c"]);
    assert.deepEqual(texts(), ["A", "B", "C"]);
    assert.equal(container.childNodes[0], first);
    assert.equal(container.childNodes[1], second);
    assert.equal(container.inserts, inserts + 1);
    assert.deepEqual([...rowRuns], [["a", 1], ["b", 1], ["c", 1]]);
  });

  it("should keep the other rows' effects alive when rows come and go", () => {
    renderList(container, items, renderItem);
    add("c", "C");
    drop("c");
    items.peek().get("b").set({ id: "b", title: "B2" });
    assert.deepEqual(texts(), ["A", "B2"]);
    assert.equal(rowRuns.get("b"), 2);
  });

  it("should remove a gone row's element and dispose its effects", () => {
    renderList(container, items, renderItem);
    const row = items.peek().get("a");
    drop("a");
    assert.deepEqual(ids(), ["b"]);
    assert.equal(rowCleanups.get("a"), 1);
    row.set({ id: "a", title: "ghost" });
    assert.equal(rowRuns.get("a"), 1);
  });

  it("should place a new row by sort, and move a row only when its place changes", () => {
    items = signal(rowsOf([["a", "A", 1], ["b", "B", 3]]));
    renderList(container, items, renderItem, { sort: (x, y) => x.rank - y.rank });
    add("c", "C", 2);
    assert.deepEqual(texts(), ["A", "C", "B"]);
    let inserts = container.inserts;
    items.peek().get("a").set({ id: "a", title: "A2", rank: 1.5 });
    assert.equal(container.inserts, inserts);
    items.peek().get("a").set({ id: "a", title: "A3", rank: 9 });
    assert.deepEqual(texts(), ["C", "B", "A3"]);
    assert.equal(container.inserts, inserts + 1);
    inserts = container.inserts;
    items.peek().get("a").set({ id: "a", title: "A4", rank: 0 });
    assert.deepEqual(texts(), ["A4", "C", "B"]);
    assert.equal(container.inserts, inserts + 1);
    assert.deepEqual(renders, ["a", "b", "c"]);
  });

  it("should follow any reordering of the map", () => {
    renderList(container, items, renderItem);
    add("c", "C");
    add("d", "D");
    const map = items.peek();
    items.set(new Map(["d", "b", "a", "c"].map((id) => [id, map.get(id)])));
    assert.deepEqual(ids(), ["d", "b", "a", "c"]);
    assert.deepEqual(renders, ["a", "b", "c", "d"]);
  });

  it("should dispose every row and remove the elements on dispose", () => {
    const dispose = renderList(container, items, renderItem);
    dispose();
    assert.deepEqual(container.childNodes, []);
    assert.deepEqual([...rowCleanups], [["a", 1], ["b", 1]]);
    add("c", "C");
    assert.deepEqual(renders, ["a", "b"]);
  });

  it("should be disposed with an effect that owns it", () => {
    const show = signal(true);
    effect(() => {
      if (show.get()) renderList(container, items, renderItem);
    });
    show.set(false);
    assert.deepEqual(container.childNodes, []);
    assert.deepEqual([...rowCleanups], [["a", 1], ["b", 1]]);
  });

  it("should not subscribe the list to what renderItem reads outside its effects", () => {
    const spy = mock.fn((item) => {
      const li = new FakeElement("li");
      li.textContent = item.get().title; // read directly, not in an effect
      return li;
    });
    renderList(container, items, spy);
    items.peek().get("a").set({ id: "a", title: "A2" });
    assert.equal(spy.mock.callCount(), 2);
  });
});

describe("escapeHtml", () => {
  it("should escape the characters that are special in HTML", () => {
    assert.equal(escapeHtml(`<a href="x">Tom & 'Jerry'</a>`), "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;");
  });

  it("should turn null and undefined into an empty string and numbers into text", () => {
    assert.equal(escapeHtml(null), "");
    assert.equal(escapeHtml(undefined), "");
    assert.equal(escapeHtml(9.99), "9.99");
  });
});
