/**
 * Declarations of signals.js: the small reactive core the rest of the client is built on.
 *
 *     const count = signal(1);
 *     const double = computed(() => count.get() * 2);
 *     const dispose = effect(() => { console.log(double.get()); });
 *     batch(() => { count.set(2); count.set(3); });
 *     dispose();
 */

/** A value that can be read, and depended on from a computed or an effect. */
export interface ReadonlySignal<T> {
  /** Read the value, and depend on it when inside a computed or effect. */
  get(): T;
  /** Read the value without depending on it. */
  peek(): T;
}

/** A value that can also be written. */
export interface Signal<T> extends ReadonlySignal<T> {
  /** Set the value; a value `Object.is` equal to the current one notifies nothing. */
  set(value: T): void;
  /** Set the value to `fn(current value)`. */
  update(fn: (value: T) => T): void;
}

/**
 * A value that notifies what read it when it changes. `set` of a value `Object.is`
 * equal to the current one notifies nothing.
 */
export function signal<T>(value: T): Signal<T>;

/**
 * A value derived from other signals: lazy (computed when first read), cached, and
 * recomputed only after one of the values it read changed. An error thrown by `fn`
 * is cached too, and thrown by `get()` until a dependency changes.
 */
export function computed<T>(fn: () => T): ReadonlySignal<T>;

/**
 * Run `fn` now and again whenever a signal or computed it read changes. `fn` may return
 * a cleanup function, called before each re-run and on dispose. Effects created while
 * `fn` runs are owned by this effect: disposed before it re-runs and when it is
 * disposed.
 *
 * @returns dispose
 */
export function effect(fn: () => void | (() => void)): () => void;

/**
 * Run `fn` and defer every effect its writes trigger until the outermost batch ends,
 * so each runs once and sees all of the writes.
 *
 * @returns what `fn` returned
 */
export function batch<T>(fn: () => T): T;

/**
 * Run `fn` without recording what it reads as dependencies of the running effect or
 * computed.
 */
export function untracked<T>(fn: () => T): T;

/**
 * Run `fn` untracked, in a new ownership scope that belongs to no effect: effects it
 * creates live until `dispose` (passed to `fn`) is called, even if `root` was called
 * from an effect that re-runs.
 *
 * @returns what `fn` returned
 */
export function root<T>(fn: (dispose: () => void) => T): T;
