import { describe, it, mock } from "node:test";
import assert from "node:assert/strict";

import {
  batch, computed, effect, root, signal, untracked,
} from "../../paintbrush/static/paintbrush/signals.js";

describe("signal", () => {
  it("should return its initial value from get and peek", () => {
    const s = signal(1);
    assert.equal(s.get(), 1);
    assert.equal(s.peek(), 1);
  });

  it("should return the new value after set and update", () => {
    const s = signal(1);
    s.set(2);
    assert.equal(s.get(), 2);
    s.update((v) => v + 10);
    assert.equal(s.get(), 12);
  });

  it("should notify an effect that read it when it changes", () => {
    const s = signal("a");
    const spy = mock.fn(() => s.get());
    effect(spy);
    s.set("b");
    assert.equal(spy.mock.callCount(), 2);
  });

  it("should not notify when set to an Object.is-equal value", () => {
    const s = signal(1);
    const nan = signal(NaN);
    const spy = mock.fn(() => [s.get(), nan.get()]);
    effect(spy);
    s.set(1);
    nan.set(NaN);
    s.update((v) => v);
    assert.equal(spy.mock.callCount(), 1);
  });

  it("should notify when set to an equal but distinct object", () => {
    const s = signal({ a: 1 });
    const spy = mock.fn(() => s.get());
    effect(spy);
    s.set({ a: 1 });
    assert.equal(spy.mock.callCount(), 2);
  });

  it("should not subscribe an effect that only peeked", () => {
    const s = signal(1);
    const spy = mock.fn(() => s.peek());
    effect(spy);
    s.set(2);
    assert.equal(spy.mock.callCount(), 1);
  });
});

describe("computed", () => {
  it("should not compute before it is read", () => {
    const spy = mock.fn(() => 1);
    computed(spy);
    assert.equal(spy.mock.callCount(), 0);
  });

  it("should cache its value while its dependencies do not change", () => {
    const s = signal(2);
    const spy = mock.fn(() => s.get() * 2);
    const c = computed(spy);
    assert.equal(c.get(), 4);
    assert.equal(c.get(), 4);
    assert.equal(c.peek(), 4);
    assert.equal(spy.mock.callCount(), 1);
    s.set(3);
    assert.equal(c.get(), 6);
    assert.equal(spy.mock.callCount(), 2);
  });

  it("should not recompute when an unrelated signal changes", () => {
    const a = signal(1);
    const other = signal(1);
    const spy = mock.fn(() => a.get());
    const c = computed(spy);
    c.get();
    other.set(2);
    c.get();
    assert.equal(spy.mock.callCount(), 1);
  });

  it("should compute the bottom of a diamond once per change, from fresh values", () => {
    const a = signal(1);
    const b = computed(() => a.get() * 2);
    const c = computed(() => a.get() * 3);
    const d = mock.fn(() => `${b.get()}+${c.get()}`);
    const bottom = computed(d);
    const seen = [];
    effect(() => seen.push(bottom.get()));
    a.set(2);
    assert.deepEqual(seen, ["2+3", "4+6"]);
    assert.equal(d.mock.callCount(), 2);
  });

  it("should not re-run an effect when its value did not change", () => {
    const s = signal(1);
    const parity = computed(() => s.get() % 2);
    const spy = mock.fn(() => parity.get());
    effect(spy);
    s.set(3);
    assert.equal(spy.mock.callCount(), 1);
    s.set(4);
    assert.equal(spy.mock.callCount(), 2);
  });

  it("should stay correct when read again after nobody watches it", () => {
    const s = signal(1);
    const c = computed(() => s.get() + 1);
    const dispose = effect(() => c.get());
    dispose();
    s.set(5);
    assert.equal(c.get(), 6);
  });

  it("should rethrow the error of its function until a dependency changes", () => {
    const s = signal(0);
    const spy = mock.fn(() => {
      if (s.get() === 0) throw new Error("zero");
      return s.get();
    });
    const c = computed(spy);
    assert.throws(() => c.get(), /zero/);
    assert.throws(() => c.get(), /zero/);
    assert.equal(spy.mock.callCount(), 1);
    s.set(1);
    assert.equal(c.get(), 1);
  });

  it("should throw when it reads itself", () => {
    const c = computed(() => c.get());
    assert.throws(() => c.get(), /Cycle detected/);
  });

  it("should drop a dependency read only in a branch no longer taken", () => {
    const useA = signal(true);
    const a = signal("a");
    const b = signal("b");
    const spy = mock.fn(() => (useA.get() ? a.get() : b.get()));
    const c = computed(spy);
    effect(() => c.get());
    useA.set(false);
    assert.equal(spy.mock.callCount(), 2);
    a.set("a2");
    assert.equal(spy.mock.callCount(), 2);
    b.set("b2");
    assert.equal(spy.mock.callCount(), 3);
    assert.equal(c.get(), "b2");
  });
});

describe("effect", () => {
  it("should run at once", () => {
    const spy = mock.fn();
    effect(spy);
    assert.equal(spy.mock.callCount(), 1);
  });

  it("should not run again after dispose", () => {
    const s = signal(1);
    const spy = mock.fn(() => s.get());
    const dispose = effect(spy);
    dispose();
    s.set(2);
    assert.equal(spy.mock.callCount(), 1);
  });

  it("should call its cleanup before each re-run and on dispose", () => {
    const s = signal(1);
    const calls = [];
    const dispose = effect(() => {
      const v = s.get();
      calls.push(`run ${v}`);
      return () => calls.push(`cleanup ${v}`);
    });
    s.set(2);
    dispose();
    dispose();
    assert.deepEqual(calls, ["run 1", "cleanup 1", "run 2", "cleanup 2"]);
  });

  it("should dispose the effects it created when it re-runs", () => {
    const list = signal(["a", "b"]);
    const item = signal(0);
    const inner = mock.fn(() => item.get());
    effect(() => {
      for (const _ of list.get()) effect(inner);
    });
    assert.equal(inner.mock.callCount(), 2);
    list.set(["a", "b", "c"]);
    assert.equal(inner.mock.callCount(), 5);
    inner.mock.resetCalls();
    item.set(1);
    // Only the three inner effects of the latest outer run are alive.
    assert.equal(inner.mock.callCount(), 3);
  });

  it("should dispose the effects it created, and run their cleanups, when disposed", () => {
    const s = signal(0);
    const cleanup = mock.fn();
    const inner = mock.fn(() => {
      s.get();
      return cleanup;
    });
    const dispose = effect(() => {
      effect(inner);
    });
    dispose();
    assert.equal(cleanup.mock.callCount(), 1);
    s.set(1);
    assert.equal(inner.mock.callCount(), 1);
  });

  it("should not re-run its parent when a child's dependency changes", () => {
    const s = signal(0);
    const outer = mock.fn(() => {
      effect(() => s.get());
    });
    effect(outer);
    s.set(1);
    assert.equal(outer.mock.callCount(), 1);
  });

  it("should re-collect its dependencies on every run", () => {
    const show = signal(true);
    const detail = signal("x");
    const spy = mock.fn(() => (show.get() ? detail.get() : null));
    effect(spy);
    show.set(false);
    detail.set("y");
    assert.equal(spy.mock.callCount(), 2);
  });

  it("should throw on a cycle instead of looping forever", () => {
    const s = signal(0);
    assert.throws(() => effect(() => s.set(s.get() + 1)), /Cycle detected/);
    assert.ok(s.peek() > 100 && s.peek() < 200);
  });

  it("should re-run after writing a signal it reads until the value settles", () => {
    const s = signal(0);
    const spy = mock.fn(() => {
      if (s.get() < 3) s.set(s.get() + 1);
    });
    effect(spy);
    assert.equal(s.peek(), 3);
    assert.equal(spy.mock.callCount(), 4);
  });

  it("should be disposed and rethrow when its first run throws", () => {
    const s = signal(0);
    const spy = mock.fn(() => {
      s.get();
      throw new Error("boom");
    });
    assert.throws(() => effect(spy), /boom/);
    s.set(1);
    assert.equal(spy.mock.callCount(), 1);
  });

  it("should run the other effects when one throws, then throw the error", () => {
    const s = signal(0);
    effect(() => {
      if (s.get() === 1) throw new Error("bad");
    });
    const spy = mock.fn(() => s.get());
    effect(spy);
    assert.throws(() => s.set(1), /bad/);
    assert.equal(spy.mock.callCount(), 2);
  });
});

describe("batch", () => {
  it("should run an effect once after all the writes", () => {
    const a = signal(1);
    const b = signal(1);
    const seen = [];
    effect(() => seen.push(a.get() + b.get()));
    batch(() => {
      a.set(2);
      b.set(3);
      assert.deepEqual(seen, [2]);
    });
    assert.deepEqual(seen, [2, 5]);
  });

  it("should defer effects until the outermost batch ends", () => {
    const s = signal(1);
    const spy = mock.fn(() => s.get());
    effect(spy);
    batch(() => {
      batch(() => s.set(2));
      assert.equal(spy.mock.callCount(), 1);
    });
    assert.equal(spy.mock.callCount(), 2);
  });

  it("should return the value of its function", () => {
    assert.equal(batch(() => 42), 42);
  });

  it("should let computeds be read fresh inside it", () => {
    const s = signal(1);
    const c = computed(() => s.get() * 10);
    effect(() => c.get());
    batch(() => {
      s.set(2);
      assert.equal(c.get(), 20);
    });
  });

  it("should run the effects even when its function throws", () => {
    const s = signal(1);
    const spy = mock.fn(() => s.get());
    effect(spy);
    assert.throws(() => batch(() => {
      s.set(2);
      throw new Error("halfway");
    }), /halfway/);
    assert.equal(spy.mock.callCount(), 2);
  });
});

describe("untracked", () => {
  it("should read without subscribing the running effect", () => {
    const tracked = signal(1);
    const ignored = signal(1);
    const spy = mock.fn(() => tracked.get() + untracked(() => ignored.get()));
    effect(spy);
    ignored.set(2);
    assert.equal(spy.mock.callCount(), 1);
    tracked.set(2);
    assert.equal(spy.mock.callCount(), 2);
  });

  it("should return the value of its function", () => {
    assert.equal(untracked(() => "x"), "x");
  });
});

describe("root", () => {
  it("should keep effects created inside it alive when the surrounding effect re-runs", () => {
    const outer = signal(0);
    const inner = signal(0);
    const spy = mock.fn(() => inner.get());
    let disposeRoot;
    effect(() => {
      if (outer.get() === 0) root((dispose) => {
        disposeRoot = dispose;
        effect(spy);
      });
    });
    outer.set(1);
    inner.set(1);
    assert.equal(spy.mock.callCount(), 2);
    disposeRoot();
    inner.set(2);
    assert.equal(spy.mock.callCount(), 2);
  });

  it("should not subscribe the surrounding effect to what it reads", () => {
    const s = signal(0);
    const spy = mock.fn(() => root(() => s.get()));
    effect(spy);
    s.set(1);
    assert.equal(spy.mock.callCount(), 1);
  });
});

describe("the graph as a whole", () => {
  it("should agree with a direct recomputation on random graphs, running each effect at most once per batch", () => {
    for (let seed = 1; seed <= 100; seed++) {
      let x = seed * 2654435761 >>> 0 || 1;
      const random = () => {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        return (x >>> 0) / 2 ** 32;
      };
      const values = [0, 1, 2, 3].map(() => Math.floor(random() * 5));
      const sources = values.map((v) => signal(v));
      // Each node: a pure function of earlier nodes, some read only on a condition.
      const formulas = [];
      const nodes = [...sources];
      for (let n = 0; n < 8; n++) {
        const inputs = [0, 1, 2].map(() => Math.floor(random() * nodes.length));
        formulas.push(inputs);
        const [a, b, c] = inputs.map((i) => nodes[i]);
        nodes.push(computed(() => (a.get() % 2 ? a.get() + b.get() : c.get() * 2) % 97));
      }
      const direct = () => {
        const all = [...values];
        for (const [a, b, c] of formulas) all.push((all[a] % 2 ? all[a] + all[b] : all[c] * 2) % 97);
        return all;
      };
      const watchers = [0, 1, 2].map(() => {
        const w = { node: nodes[4 + Math.floor(random() * 8)] };
        w.runs = mock.fn(() => (w.last = w.node.get()));
        w.dispose = effect(w.runs);
        return w;
      });
      for (let step = 0; step < 20; step++) {
        for (const w of watchers) w.runs.mock.resetCalls();
        batch(() => {
          for (let k = 0; k < 2; k++) {
            const i = Math.floor(random() * values.length);
            values[i] = Math.floor(random() * 5);
            sources[i].set(values[i]);
          }
        });
        const expected = direct();
        nodes.forEach((node, i) => assert.equal(node.get(), expected[i], `seed ${seed} node ${i}`));
        for (const w of watchers) {
          assert.ok(w.runs.mock.callCount() <= 1, `seed ${seed}`);
          assert.equal(w.last, w.node.peek(), `seed ${seed}: an effect missed a change`);
        }
      }
      for (const w of watchers) w.dispose();
      // Nothing is left subscribed once every effect is gone.
      for (const s of sources) assert.equal(s._targets.size, 0, `seed ${seed}`);
    }
  });
});
