// Overview: requests, tokens and cost over time per client key or model, errors and failovers,
// and the credentials' health at a glance.

import { barChart, colorMap, seriesOf } from "../chart.js";
import { emptyState, fill, h, table } from "../dom.js";
import { compact, num, usd } from "../format.js";

const REFRESH_MS = 15000;
const RANGES = [
  { id: "24h", label: "Last 24 hours, per hour", bucket: "hour", count: 24 },
  { id: "7d", label: "Last 7 days, per day", bucket: "day", count: 7 },
  { id: "30d", label: "Last 30 days, per day", bucket: "day", count: 30 },
];
const GROUPS = [
  { id: "client_key", label: "Client key" },
  { id: "model", label: "Model" },
];
const SHORT_DAY = new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric" });
const LONG_DAY = new Intl.DateTimeFormat("en-US", { weekday: "short", month: "short", day: "numeric" });
const HOUR = new Intl.DateTimeFormat("en-US", { hour: "2-digit", minute: "2-digit", hour12: false });

function bucketLabeller(bucket) {
  return (t, short) => {
    const d = new Date(t * 1000);
    if (bucket === "day") return short ? SHORT_DAY.format(d) : LONG_DAY.format(d);
    return short ? HOUR.format(d) : `${SHORT_DAY.format(d)}, ${HOUR.format(d)}`;
  };
}

function card(label, value, detail) {
  return h("div", { class: "stat card" }, h("p", { class: "stat-label", text: label }), h("p", { class: "stat-value", text: value }),
    detail ? h("p", { class: "stat-detail muted small", text: detail }) : null);
}

function select(id, label, options, onChange) {
  const el = h("select", { id }, options.map((o) => h("option", { value: o.id, text: o.label })));
  el.addEventListener("change", () => onChange(options.find((o) => o.id === el.value)));
  return h("div", { class: "field inline" }, h("label", { for: id, text: label }), el);
}

export default {
  id: "overview",
  title: "Overview",
  render(ctx) {
    const view = { range: RANGES[0], group: GROUPS[0] };
    let last = "";
    const cards = h("div", { class: "cards" });
    const charts = h("div", { class: "charts" });
    const health = h("section", { class: "health", "aria-labelledby": "health-title" });
    ctx.el.append(
      h("div", { class: "toolbar" },
        select("overview-range", "Period", RANGES, (r) => { view.range = r; refresh().catch(ctx.fail); }),
        select("overview-group", "Split by", GROUPS, (g) => { view.group = g; last = ""; refresh().catch(ctx.fail); })),
      cards, charts, health);

    async function refresh() {
      const tz = -new Date().getTimezoneOffset();
      const { bucket, count } = view.range;
      const [history, status] = await Promise.all([
        ctx.api.get(`/usage/history?bucket=${bucket}&count=${count}&tz=${tz}`),
        ctx.api.get("/credential-status"),
      ]);
      const key = JSON.stringify([view.range.id, view.group.id, history.start, history.rows]);
      if (key !== last) {
        last = key;
        if (history.enabled) drawHistory(history);
        else await drawTotalsOnly();
      }
      drawHealth(status.credentials);
    }

    function drawHistory(history) {
      const buckets = [];
      for (let t = history.start; t < history.end; t += history.bucket_seconds) buckets.push(t);
      const rows = history.rows;
      const sum = (f) => rows.reduce((a, r) => a + r[f], 0);
      const requests = sum("requests");
      const failed = sum("failed");
      fill(cards,
        card("Requests", num(requests)),
        card("Tokens", compact(sum("tokens")), sum("tokens") >= 1000 ? num(sum("tokens")) : ""),
        card("Cost", usd(sum("cost_usd")), "at list prices"),
        card("Errors", num(failed), requests ? `${((failed / requests) * 100).toFixed(1)}% of requests` : ""),
        card("Failovers", num(sum("failovers")), "requests that needed another attempt"));
      const label = bucketLabeller(history.bucket);
      const by = view.group.id;
      const nameOf = (r) => r[by];
      const requestSeries = seriesOf(buckets, rows, nameOf, (r) => r.requests);
      const colors = colorMap(requestSeries);
      const what = view.group.label.toLowerCase();
      fill(charts,
        barChart({ title: `Requests by ${what}`, buckets, series: requestSeries, format: compact, bucketLabel: label, integer: true, colors }),
        barChart({ title: `Tokens by ${what}`, buckets, series: seriesOf(buckets, rows, nameOf, (r) => r.tokens), format: compact, bucketLabel: label, integer: true, colors }),
        barChart({ title: `Cost by ${what}`, buckets, series: seriesOf(buckets, rows, nameOf, (r) => r.cost_usd), format: usd, bucketLabel: label, colors }),
        barChart({
          title: "Errors and failovers",
          buckets,
          series: [
            { name: "Errors", values: buckets.map((t) => rows.filter((r) => r.time === t).reduce((a, r) => a + r.failed, 0)) },
            { name: "Failovers", values: buckets.map((t) => rows.filter((r) => r.time === t).reduce((a, r) => a + r.failovers, 0)) },
          ].map((s) => ({ ...s, total: s.values.reduce((a, b) => a + b, 0) })),
          format: compact,
          bucketLabel: label,
          stacked: false,
          integer: true,
          colors: new Map([["Errors", 5], ["Failovers", 1]]),
          emptyText: "No errors and no failovers in this period.",
        }));
    }

    async function drawTotalsOnly() {
      const usage = (await ctx.api.get("/usage")).usage;
      fill(cards,
        card("Requests since start", num(usage.total_requests)),
        card("Tokens since start", compact(usage.total_tokens)),
        card("Cost since start", usd(usage.cost_usd)),
        card("Errors since start", num(usage.failure_count)));
      const keys = Object.entries(usage.apis || {});
      fill(charts, emptyState("No usage history is kept.", "usage-db is off in the config, so the proxy keeps only totals since it started. Remove usage-db: off to keep per-hour history."),
        keys.length ? table(["Client key", "Requests", "Tokens", "Cost"], keys.map(([name, t]) => [name, num(t.total_requests), num(t.total_tokens), usd(t.cost_usd)])) : null);
    }

    function drawHealth(creds) {
      const cooling = creds.filter((c) => c.cooldowns.length);
      const failing = creds.filter((c) => c.refresh_error);
      const disabled = creds.filter((c) => c.disabled);
      fill(health,
        h("h2", { id: "health-title", text: "Credentials now" }),
        h("div", { class: "cards" },
          card("Credentials", num(creds.length), `${num(creds.length - disabled.length)} enabled`),
          card("Cooling down", num(cooling.length), cooling.slice(0, 3).map((c) => c.name).join(", ")),
          card("Refresh failures", num(failing.length), failing.slice(0, 3).map((c) => c.name).join(", "))),
        h("p", null, h("a", { href: "#/credentials", text: "Manage credentials →" })));
    }

    ctx.every(REFRESH_MS, refresh);
  },
};
