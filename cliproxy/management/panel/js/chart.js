// Bar charts in SVG, drawn for the width they get (and redrawn when it changes), each with a
// legend and the same figures as a table for screen readers and for copying.

import { h } from "./dom.js";

const MAX_SERIES = 6; // the biggest five plus "other" when there are more
const HEIGHT = 190;
const MARGIN = { top: 10, right: 8, bottom: 24 };
const AXIS_CHAR_PX = 6.6; // width of one axis-label character at 11px

/** Rows of the usage history → one series per name (by `nameOf`), values per bucket (by `valueOf`). */
export function seriesOf(buckets, rows, nameOf, valueOf) {
  const position = new Map(buckets.map((t, i) => [t, i]));
  const values = new Map();
  for (const row of rows) {
    const i = position.get(row.time);
    if (i === undefined) continue;
    const name = nameOf(row) || "(none)";
    if (!values.has(name)) values.set(name, new Array(buckets.length).fill(0));
    values.get(name)[i] += valueOf(row);
  }
  const all = [...values.entries()].map(([name, v]) => ({ name, values: v, total: v.reduce((a, b) => a + b, 0) }));
  all.sort((a, b) => b.total - a.total || a.name.localeCompare(b.name));
  if (all.length <= MAX_SERIES) return all;
  const kept = all.slice(0, MAX_SERIES - 1);
  const other = { name: `${all.length - kept.length} others`, values: new Array(buckets.length).fill(0), total: 0, other: true };
  for (const s of all.slice(MAX_SERIES - 1)) {
    s.values.forEach((v, i) => { other.values[i] += v; });
    other.total += s.total;
  }
  return [...kept, other];
}

/** The top of the axis: four equal steps of 1, 2 or 5 × 10ⁿ (whole steps for counts). */
function niceMax(value, integer) {
  const step = Math.max(value, 0) / 4;
  if (step <= 0) return integer ? 4 : 1;
  const power = 10 ** Math.floor(Math.log10(step));
  for (const m of [1, 2, 2.5, 3, 5, 10]) {
    const candidate = m * power;
    if (candidate >= step && (!integer || Number.isInteger(candidate))) return candidate * 4;
  }
  return 40 * power;
}

function draw(canvas, { buckets, series, format, bucketLabel, stacked, title, integer, colorOf }) {
  const width = Math.max(260, Math.floor(canvas.clientWidth || 600));
  const n = buckets.length;
  const totals = buckets.map((_, i) => (stacked ? series.reduce((sum, s) => sum + s.values[i], 0) : Math.max(0, ...series.map((s) => s.values[i]))));
  const top = niceMax(Math.max(0, ...totals), integer);
  const ticks = [0, 1, 2, 3, 4].map((g) => (top * g) / 4);
  const left = Math.ceil(10 + AXIS_CHAR_PX * Math.max(...ticks.map((v) => format(v).length)));
  const plotW = width - left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (v) => MARGIN.top + plotH - (v / top) * plotH;
  const svg = h("svg:svg", { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: "img", "aria-label": title, class: "chart-svg" });
  for (const value of ticks) {
    const gy = y(value);
    svg.append(h("svg:line", { x1: left, x2: width - MARGIN.right, y1: gy, y2: gy, class: "grid" }));
    svg.append(h("svg:text", { x: left - 6, y: gy + 4, class: "axis axis-y", "text-anchor": "end" }, format(value)));
  }
  const slot = plotW / Math.max(1, n);
  const barW = Math.max(1, slot * 0.78);
  const labelEvery = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(plotW / 70))));
  buckets.forEach((bucket, i) => {
    const x0 = left + i * slot + (slot - barW) / 2;
    let base = 0;
    series.forEach((s, k) => {
      const v = s.values[i];
      if (!v) return;
      const cls = `bar ${colorOf(s, k)}`;
      const tip = h("svg:title", null, `${bucketLabel(bucket)} · ${s.name}: ${format(v)}`);
      if (stacked) {
        svg.append(h("svg:rect", { x: x0, y: y(base + v), width: barW, height: Math.max(0.5, y(base) - y(base + v)), class: cls }, tip));
        base += v;
      } else {
        const w = barW / series.length;
        svg.append(h("svg:rect", { x: x0 + k * w, y: y(v), width: Math.max(1, w - 1), height: Math.max(0.5, y(0) - y(v)), class: cls }, tip));
      }
    });
    if (i % labelEvery === 0) {
      svg.append(h("svg:text", { x: x0 + barW / 2, y: HEIGHT - 6, class: "axis axis-x", "text-anchor": "middle" }, bucketLabel(bucket, true)));
    }
  });
  svg.append(h("svg:line", { x1: left, x2: width - MARGIN.right, y1: y(0), y2: y(0), class: "baseline" }));
  canvas.replaceChildren(svg);
}

/** name → colour index, in the order of `series` (the first chart's), for the charts beside it. */
export function colorMap(series) {
  const map = new Map();
  series.filter((s) => !s.other).forEach((s, k) => map.set(s.name, k % MAX_SERIES));
  return map;
}

/**
 * A figure: title, chart, legend with totals, and a "show as table" disclosure.
 * `buckets` are bucket start times; `series` from seriesOf; `format(value)` for values;
 * `bucketLabel(t, short)` names a bucket.
 */
export function barChart({ title, buckets, series, format, bucketLabel, stacked = true, integer = false, colors, emptyText = "No requests in this period." }) {
  const figure = h("figure", { class: "chart card" }, h("figcaption", { class: "chart-title", text: title }));
  if (!series.length || series.every((s) => s.total === 0)) {
    figure.append(h("p", { class: "chart-empty", text: emptyText }));
    return figure;
  }
  const canvas = h("div", { class: "chart-canvas" });
  // The same name gets the same colour in every chart drawn with the same `colors` map.
  const colorOf = (s, k) => (s.other ? "series-other" : `series-${colors && colors.has(s.name) ? colors.get(s.name) : k % MAX_SERIES}`);
  const options = { buckets, series, format, bucketLabel, stacked, title, integer, colorOf };
  figure.append(canvas);
  figure.append(h("ul", { class: "legend" }, series.map((s, k) => h("li", null,
    h("span", { class: `swatch ${colorOf(s, k)}`, "aria-hidden": "true" }),
    h("span", { class: "legend-name", text: s.name }),
    h("span", { class: "legend-total", text: format(s.total) })))));
  const rows = buckets.map((t, i) => h("tr", null, h("th", { scope: "row", text: bucketLabel(t) }), series.map((s) => h("td", { text: format(s.values[i]) }))));
  figure.append(h("details", { class: "chart-table" }, h("summary", { text: "Show as table" }),
    h("div", { class: "table-wrap" }, h("table", { class: "data compact" },
      h("thead", null, h("tr", null, h("th", { scope: "col", text: "Time" }), series.map((s) => h("th", { scope: "col", text: s.name })))),
      h("tbody", null, rows)))));
  let lastWidth = -1;
  const observer = new ResizeObserver(() => {
    if (!canvas.isConnected) {
      observer.disconnect();
      return;
    }
    if (canvas.clientWidth !== lastWidth) {
      lastWidth = canvas.clientWidth;
      draw(canvas, options);
    }
  });
  observer.observe(canvas);
  return figure;
}
