// My usage: what the signed-in user's keys spent this period, per key and per day.

import { emptyState, fill, h, table } from "../dom.js";
import { num, usd } from "../format.js";

const REFRESH_MS = 15000;
const DAY = new Intl.DateTimeFormat("en-US", { weekday: "short", month: "short", day: "numeric", timeZone: "UTC" });

function stat(label, value) {
  return h("div", { class: "stat card" }, h("p", { class: "stat-label", text: label }), h("p", { class: "stat-value", text: value }));
}

export default {
  id: "my-usage",
  title: "My usage",
  audience: "member",
  render(ctx) {
    const body = h("div");
    ctx.el.append(body);

    async function refresh() {
      const usage = await ctx.account.get("/usage");
      const totals = usage.totals;
      const keys = usage.keys.filter((k) => k.usage.requests_this_period > 0 || k.status === "active");
      fill(body,
        h("div", { class: "cards" },
          stat("Spent this period", usd(totals.cost_usd_this_period)),
          stat("Requests this period", num(totals.requests_this_period)),
          stat("Tokens this period", num(totals.tokens_this_period))),
        h("h2", { text: "Per key" }),
        keys.length ? table(["Key", "Requests", "Tokens", "Spent"], keys.map((k) => {
          const row = [k.name, num(k.usage.requests_this_period), num(k.usage.tokens_this_period), usd(k.usage.cost_usd_this_period)];
          row.attrs = { "data-key": k.name };
          return row;
        }), { className: "my-usage-keys" }) : emptyState("No keys yet.", ""),
        h("h2", { text: "Per day (last 30 days)" }),
        usage.days.length ? table(["Day (UTC)", "Requests", "Tokens", "Spent"], usage.days.slice().reverse().map((d) =>
          [DAY.format(new Date(d.day * 1000)), num(d.requests), num(d.tokens), usd(d.cost_usd)]), { className: "my-usage-days" })
          : emptyState("No requests in the last 30 days.", ""));
    }

    ctx.every(REFRESH_MS, refresh);
  },
};
