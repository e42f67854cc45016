// The operations page: this server process's paintbrush.metrics numbers (the JSON view),
// polled every second and plotted as they come, in plain SVG on the shipped signals.
import { computed, effect, getSocket, signal } from "paintbrush";

const POINTS = 60; // a minute of history
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const source = $("plots").dataset.source;

// The page's own socket: it counts among the sockets it plots.
const socket = getSocket();
effect(() => { $("conn").textContent = socket.connected.get() ? "live" : "reconnecting…"; });

/** [{ t: seconds, s: snapshot }], oldest first, at most POINTS + 1. */
const samples = signal([]);
const latest = computed(() => samples.get().at(-1)?.s ?? null);

/** Pairs of consecutive samples mapped by `fn(previous, current, seconds between)`. */
const rates = (fn) => computed(() => {
  const list = samples.get();
  return list.slice(1).map((b, i) => fn(list[i].s, b.s, b.t - list[i].t));
});

/** The `q` quantile of histogram buckets ([[upper bound, cumulative count]], ascending,
 * finite bounds) holding `count` observations, as Prometheus's histogram_quantile. */
export function quantile(q, buckets, count) {
  if (!(count > 0)) return null;
  const rank = q * count;
  let lower = 0;
  let below = 0;
  for (const [bound, cumulative] of buckets) {
    if (cumulative >= rank) {
      return cumulative === below ? bound : lower + ((bound - lower) * (rank - below)) / (cumulative - below);
    }
    lower = bound;
    below = cumulative;
  }
  return lower;
}

const sockets = computed(() => samples.get().slice(1).map((x) => x.s.sockets));
const eventsPerSecond = rates((a, b, dt) => (dt > 0 ? Math.max(0, b.events_published - a.events_published) / dt : 0));
// The median of the messages fanned out between two polls: the buckets' differences.
const lagP50 = rates((a, b) => {
  const count = b.lag.count - a.lag.count;
  const before = new Map(a.lag.buckets);
  const buckets = b.lag.buckets.map(([bound, n]) => [bound, n - (before.get(bound) ?? 0)]);
  return quantile(0.5, buckets, count);
});

const fmt = {
  count: (v) => String(Math.round(v)),
  rate: (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(1)),
  seconds: (v) => (v >= 1 ? `${v.toFixed(2)} s` : `${(v * 1000).toFixed(v < 0.01 ? 2 : 1)} ms`),
};

/** Draw `series` (numbers, or null for "no data") into `svg`, newest at the right. */
function plot(svg, series, format) {
  effect(() => {
    const values = series.get();
    const known = values.filter((v) => v !== null);
    const max = Math.max(...known, 0);
    const top = max > 0 ? max * 1.15 : 1;
    const step = 300 / POINTS;
    const start = 300 - step * (values.length - 1);
    let d = "";
    let pen = "M";
    values.forEach((v, i) => {
      if (v === null) { pen = "M"; return; }
      d += `${pen}${(start + i * step).toFixed(1)},${(78 - (v / top) * 74).toFixed(1)} `;
      pen = "L";
    });
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d.trim());
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", "4");
    label.setAttribute("y", "10");
    label.textContent = known.length ? `max ${format(max)}` : "no data yet";
    svg.replaceChildren(path, label);
    svg.dataset.points = String(known.length);
    svg.dataset.max = String(max);
    svg.dataset.latest = String(known.at(-1) ?? "");
  });
}

plot($("plot-sockets"), sockets, fmt.count);
plot($("plot-events"), eventsPerSecond, fmt.rate);
plot($("plot-lag"), lagP50, fmt.seconds);

const entries = (obj) => Object.entries(obj).map(([k, v]) => `${k}: ${v}`).join(", ") || "none";

effect(() => {
  const s = latest.get();
  if (!s) return;
  $("sockets").textContent = String(s.sockets);
  $("events").textContent = String(s.events_published);
  $("deliveries").textContent = String(s.deliveries);
  $("backlog").textContent = String(s.backlog);
  $("lag-p99").textContent = s.lag.p99 === null ? "–" : fmt.seconds(s.lag.p99);
  $("subscriptions").textContent = entries(s.subscriptions);
  $("resyncs").textContent = entries(s.resyncs);
  $("dropped").textContent = `${s.dropped.frames}, ${s.dropped.shed}`;
  $("refusals").textContent = entries(s.refusals);
});
effect(() => {
  const rate = eventsPerSecond.get().at(-1);
  $("events-rate").textContent = rate === undefined ? "–" : fmt.rate(rate);
  const lag = lagP50.get().at(-1);
  $("lag").textContent = lag === undefined || lag === null ? "–" : fmt.seconds(lag);
});

async function poll() {
  try {
    const response = await fetch(source, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`The metrics answered ${response.status} ${response.statusText}.`);
    const snapshot = await response.json();
    samples.update((list) => [...list.slice(-POINTS), { t: performance.now() / 1000, s: snapshot }]);
    $("error").hidden = true;
  } catch (err) {
    $("error").textContent = err.message;
    $("error").hidden = false;
  } finally {
    setTimeout(poll, 1000);
  }
}
poll();
