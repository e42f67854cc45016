/**
 * Paintbrush signals: the small reactive core the rest of the client is built on.
 *
 *     import { signal, computed, effect, batch } from "./signals.js";
 *
 *     const count = signal(1);
 *     const double = computed(() => count.get() * 2);
 *     const dispose = effect(() => console.log(double.get()));  // logs 2
 *     batch(() => { count.set(2); count.set(3); });              // logs 6, once
 *     dispose();
 *
 * How it works, in short. Every readable node (signal, computed) has a `_version` that
 * changes when its value changes. An observer (computed, effect) records, while its
 * function runs, which nodes it read and at which version. A write pushes a cheap
 * "maybe stale" mark down the graph and queues the effects it reaches; when the
 * outermost batch ends, each queued effect *pulls*: it refreshes its sources in the
 * order it read them and re-runs only if one of them is at a new version. Pulling is
 * what makes the graph glitch-free (a diamond's bottom computes once, from fresh
 * inputs) and lets a computed whose value did not change stop the propagation.
 *
 * Computeds subscribe to their sources only while something subscribes to them, so
 * a computed nobody watches holds no reference from its sources and can be
 * garbage-collected; when read, such a computed checks its sources only if anything
 * was written since it last looked (`_epoch`).
 *
 * Effects created while another effect runs are owned by it and disposed when it
 * re-runs or is disposed: an outer effect that builds one inner effect per list item
 * cannot leak the inner effects of a previous run. `root()` opens an ownership scope
 * that no effect re-run reaches (renderList keeps one per row).
 */

// #region Global state

/** Flush rounds after which effects that keep re-triggering each other are a cycle. */
const _MAX_ROUNDS = 100;

/** The computed or effect whose function is running: what it reads becomes a source. */
let _observer = null;
/** The effect or root scope whose function is running: effects created now are its children. */
let _owner = null;
/** Depth of nested batches; effects flush when the outermost one ends. */
let _batchDepth = 0;
/** Effects marked by writes, waiting for the end of the outermost batch. */
let _queue = [];
/** Bumped by every write: an unwatched computed uses it to skip re-checking its sources. */
let _epoch = 0;

// #endregion
// #region Dependency tracking

/** Record `source` as read by the running observer, at its current version. */
function _track(source) {
  const observer = _observer;
  if (!observer || observer._next.has(source)) return;
  observer._next.set(source, source._version);
  // Subscribe now rather than after the run: a write the observer makes to something
  // it already read must reach it (and be caught as a cycle if it never settles).
  if (observer._watched() && !observer._sources.has(source)) source._subscribe(observer);
}

/**
 * Run `fn` with `node` as the observer, then swap in the sources this run read. The
 * set is re-collected on every run, so a branch not taken drops its dependencies.
 */
function _runTracked(node, fn) {
  const previous = _observer;
  node._next = new Map();
  _observer = node;
  try {
    return fn();
  } finally {
    _observer = previous;
    const old = node._sources;
    const next = node._next;
    node._sources = next;
    node._next = null;
    for (const source of old.keys()) if (!next.has(source)) source._unsubscribe(node);
    // An effect disposed by its own function must not stay subscribed to what it read.
    if (node._disposed) for (const source of next.keys()) source._unsubscribe(node);
  }
}

/** Whether any source of `node` moved to a new version since `node` last ran. */
function _sourcesChanged(node) {
  // In read order, stopping at the first change: a later source may only have been
  // read because of an earlier one's old value, and need not be refreshed at all.
  for (const [source, version] of node._sources) {
    source._refresh();
    if (source._version !== version) return true;
  }
  return false;
}

// #endregion
// #region Batching

function _endBatch() {
  if (_batchDepth > 1) {
    _batchDepth--;
    return;
  }
  // The depth stays at 1 while effects run, so what they write is queued for the next
  // round instead of flushing re-entrantly.
  let error;
  let failed = false;
  try {
    for (let round = 0; _queue.length; round++) {
      if (round === _MAX_ROUNDS) {
        for (const effect of _queue) effect._queued = false;
        _queue = [];
        throw new Error(
          `Cycle detected: effects still re-triggered each other after ${_MAX_ROUNDS} rounds ` +
            "(an effect probably writes a signal it reads)",
        );
      }
      const queue = _queue;
      _queue = [];
      for (const effect of queue) {
        effect._queued = false;
        try {
          if (!effect._disposed && _sourcesChanged(effect)) effect._run();
        } catch (err) {
          // One failing effect must not starve the others; the first error surfaces.
          if (!failed) [failed, error] = [true, err];
        }
      }
    }
  } finally {
    _batchDepth = 0;
  }
  if (failed) throw error;
}

// #endregion
// #region Signal

class _Signal {
  constructor(value) {
    this._value = value;
    this._version = 0;
    this._targets = new Set();
  }

  _refresh() {}

  _subscribe(target) {
    this._targets.add(target);
  }

  _unsubscribe(target) {
    this._targets.delete(target);
  }

  get() {
    _track(this);
    return this._value;
  }

  peek() {
    return this._value;
  }

  set(value) {
    if (Object.is(value, this._value)) return;
    this._value = value;
    this._version++;
    _epoch++;
    _batchDepth++;
    try {
      for (const target of this._targets) target._mark();
    } finally {
      _endBatch();
    }
  }

  update(fn) {
    this.set(fn(this._value));
  }
}

// #endregion
// #region Computed

class _Computed {
  constructor(fn) {
    this._fn = fn;
    this._value = undefined;
    this._error = undefined;
    this._failed = false;
    this._version = 0; // 0: never computed
    this._epoch = -1;
    this._stale = true;
    this._computing = false;
    this._sources = new Map();
    this._next = null;
    this._targets = new Set();
  }

  _watched() {
    return this._targets.size > 0;
  }

  _subscribe(target) {
    // The first subscriber makes this computed part of the push graph.
    if (!this._targets.size) for (const source of this._sources.keys()) source._subscribe(this);
    this._targets.add(target);
  }

  _unsubscribe(target) {
    // The last one leaves it unreferenced by its sources, free to be collected.
    if (this._targets.delete(target) && !this._targets.size) {
      for (const source of this._sources.keys()) source._unsubscribe(this);
    }
  }

  _mark() {
    // Already stale means its targets were marked too: stop here.
    if (this._stale) return;
    this._stale = true;
    for (const target of this._targets) target._mark();
  }

  _refresh() {
    if (this._computing) throw new Error("Cycle detected: a computed reads its own value");
    // Watched, it is fresh unless marked; unwatched, unless something was written.
    const fresh = this._watched() ? !this._stale : this._epoch === _epoch;
    this._stale = false;
    this._epoch = _epoch;
    if (fresh || (this._version > 0 && !_sourcesChanged(this))) return;
    const owner = _owner;
    // A computed runs whenever it is first read: effects it creates belong to no one.
    _owner = null;
    this._computing = true;
    try {
      const value = _runTracked(this, this._fn);
      if (this._version === 0 || this._failed || !Object.is(value, this._value)) {
        this._value = value;
        this._failed = false;
        this._error = undefined;
        this._version++;
      }
    } catch (err) {
      this._error = err;
      this._failed = true;
      this._version++;
    } finally {
      this._computing = false;
      _owner = owner;
    }
  }

  get() {
    this._refresh();
    _track(this);
    if (this._failed) throw this._error;
    return this._value;
  }

  peek() {
    this._refresh();
    if (this._failed) throw this._error;
    return this._value;
  }
}

// #endregion
// #region Effect

/** An ownership scope that is not an effect: see `root()`. */
class _Scope {
  constructor() {
    this._children = new Set();
  }

  _dispose() {
    for (const child of this._children) child._dispose();
    this._children.clear();
  }
}

class _Effect {
  constructor(fn) {
    this._fn = fn;
    this._cleanup = null;
    this._sources = new Map();
    this._next = null;
    this._children = new Set();
    this._owner = _owner;
    this._disposed = false;
    this._queued = false;
    _owner?._children.add(this);
  }

  _watched() {
    return !this._disposed;
  }

  _mark() {
    if (this._queued || this._disposed) return;
    this._queued = true;
    _queue.push(this);
  }

  _run() {
    this._disposeChildren();
    this._runCleanup();
    const owner = _owner;
    _owner = this;
    try {
      const cleanup = _runTracked(this, this._fn);
      this._cleanup = typeof cleanup === "function" ? cleanup : null;
    } finally {
      _owner = owner;
    }
  }

  _runCleanup() {
    const cleanup = this._cleanup;
    this._cleanup = null;
    if (cleanup) untracked(cleanup);
  }

  _disposeChildren() {
    for (const child of this._children) child._dispose();
    this._children.clear();
  }

  _dispose() {
    if (this._disposed) return;
    this._disposed = true;
    this._disposeChildren();
    this._runCleanup();
    for (const source of this._sources.keys()) source._unsubscribe(this);
    this._sources = new Map();
    this._owner?._children.delete(this);
  }
}

// #endregion
// #region Public API

/**
 * @template T
 * @typedef {object} ReadonlySignal
 * @property {() => T} get   read the value, and depend on it when inside a computed or effect
 * @property {() => T} peek  read the value without depending on it
 */

/**
 * @template T
 * @typedef {ReadonlySignal<T> & {
 *   set: (value: T) => void,
 *   update: (fn: (value: T) => T) => void,
 * }} Signal
 */

/**
 * A value that notifies what read it when it changes. `set` of a value `Object.is`
 * equal to the current one notifies nothing.
 *
 * @template T
 * @param {T} value
 * @returns {Signal<T>}
 */
function signal(value) {
  return new _Signal(value);
}

/**
 * A value derived from other signals: lazy (computed when first read), cached, and
 * recomputed only after one of the values it read changed. An error thrown by `fn`
 * is cached too, and thrown by `get()` until a dependency changes.
 *
 * @template T
 * @param {() => T} fn
 * @returns {ReadonlySignal<T>}
 */
function computed(fn) {
  return new _Computed(fn);
}

/**
 * Run `fn` now and again whenever a signal or computed it read changes. `fn` may return
 * a cleanup function, called before each re-run and on dispose. Effects created while
 * `fn` runs are owned by this effect: disposed before it re-runs and when it is
 * disposed.
 *
 * @param {() => (void | (() => void))} fn
 * @returns {() => void} dispose
 */
function effect(fn) {
  const node = new _Effect(fn);
  _batchDepth++;
  try {
    node._run();
  } catch (err) {
    node._dispose();
    throw err;
  } finally {
    _endBatch();
  }
  return () => node._dispose();
}

/**
 * Run `fn` and defer every effect its writes trigger until the outermost batch ends,
 * so each runs once and sees all of the writes.
 *
 * @template T
 * @param {() => T} fn
 * @returns {T} what `fn` returned
 */
function batch(fn) {
  _batchDepth++;
  try {
    return fn();
  } finally {
    _endBatch();
  }
}

/**
 * Run `fn` without recording what it reads as dependencies of the running effect or
 * computed.
 *
 * @template T
 * @param {() => T} fn
 * @returns {T}
 */
function untracked(fn) {
  const previous = _observer;
  _observer = null;
  try {
    return fn();
  } finally {
    _observer = previous;
  }
}

/**
 * Run `fn` untracked, in a new ownership scope that belongs to no effect: effects it
 * creates live until `dispose` (passed to `fn`) is called, even if `root` was called
 * from an effect that re-runs.
 *
 * @template T
 * @param {(dispose: () => void) => T} fn
 * @returns {T} what `fn` returned
 */
function root(fn) {
  const scope = new _Scope();
  const owner = _owner;
  _owner = scope;
  try {
    return untracked(() => fn(() => scope._dispose()));
  } finally {
    _owner = owner;
  }
}

export { signal, computed, effect, batch, untracked, root };

// #endregion
