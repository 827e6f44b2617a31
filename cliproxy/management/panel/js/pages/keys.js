// Client keys: who may call the proxy, with usage against each key's limits.

import { q } from "../api.js";
import { actionButton, badge, emptyState, field, fill, h, keepFocus, meter, table } from "../dom.js";
import { dateTime, maskSecret, num, relative, usd } from "../format.js";

const REFRESH_MS = 5000;
const NUMBER_FIELDS = [
  ["max-budget-usd", "Budget (USD per period)", "any", "Leave empty for no budget."],
  ["max-tokens-per-day", "Tokens per day", "1", "Leave empty for no daily allowance."],
  ["max-requests-per-minute", "Requests per minute", "1", ""],
  ["max-concurrent", "Requests at once", "1", ""],
];

function status(key) {
  if (key.disabled) return badge("Disabled", "muted");
  if (key.expires && new Date(key.expires) < new Date()) return badge("Expired", "danger");
  return badge("Active", "ok");
}

function usageCell(key) {
  const usage = key.usage;
  if (!usage) return h("span", { class: "muted", text: "—" });
  const period = key["budget-period"] || usage.budget_period || "month";
  return h("div", { class: "usage" },
    meter(`Budget this ${period}`, usage.cost_usd_this_period, key["max-budget-usd"], usd),
    meter("Tokens today", usage.tokens_today, key["max-tokens-per-day"], num),
    h("p", { class: "muted small", text: `${num(usage.requests_today)} requests today · ${num(usage.requests_last_minute)} in the last minute${key["max-requests-per-minute"] ? ` (limit ${num(key["max-requests-per-minute"])})` : ""}` }));
}

/** The fields of a create or edit form, read back as the API wants them (empty → null). */
function keyForm(existing) {
  const inputs = {};
  const name = h("input", { type: "text", id: "key-name", required: true, value: existing ? existing.name : "", readonly: Boolean(existing), autocomplete: "off" });
  const models = h("input", { type: "text", id: "key-models", value: existing ? (existing.models || []).join(", ") : "", placeholder: "claude-*, gpt-4o", autocomplete: "off" });
  const period = h("select", { id: "key-budget-period" }, ["month", "week", "day"].map((p) => h("option", { value: p, text: p, selected: existing && existing["budget-period"] === p })));
  const expires = h("input", { type: "text", id: "key-expires", value: existing ? existing.expires || "" : "", placeholder: "2026-12-31", autocomplete: "off" });
  const fields = [
    field("Name", name, existing ? "The name cannot change." : "Shown in usage and logs instead of the key."),
    field("Models", models, "Glob patterns, comma separated; empty allows every model."),
  ];
  for (const [yaml, label, step, hint] of NUMBER_FIELDS) {
    inputs[yaml] = h("input", { type: "number", min: "0", step, id: `key-${yaml}`, value: existing && existing[yaml] != null ? String(existing[yaml]) : "", inputmode: "decimal" });
    fields.push(field(label, inputs[yaml], hint));
  }
  fields.push(field("Budget period", period), field("Expires", expires, "A date or date and time (UTC); empty for never."));
  const read = () => {
    const body = { models: models.value.split(/[\s,]+/).filter(Boolean), "budget-period": period.value, expires: expires.value.trim() || null };
    for (const [yaml] of NUMBER_FIELDS) {
      const raw = inputs[yaml].value.trim();
      body[yaml] = raw === "" ? null : Number(raw);
    }
    if (!existing) {
      body.name = name.value.trim();
      for (const k of Object.keys(body)) if (body[k] === null) delete body[k];
    }
    return body;
  };
  return { fields: h("div", { class: "form-grid" }, fields), read, name };
}

export default {
  id: "keys",
  title: "Client keys",
  render(ctx) {
    let keys = [];
    let plain = [];
    const list = h("div");
    const plainBox = h("div");
    const tools = h("div", { class: "toolbar" });
    if (!ctx.readOnly) tools.append(h("button", { type: "button", class: "primary", text: "New client key", onclick: () => editDialog(null) }));
    ctx.el.append(tools, list, plainBox);

    async function refresh() {
      const [objects, strings] = await Promise.all([ctx.api.get("/client-keys"), ctx.api.get("/api-keys")]);
      keys = objects["client-keys"];
      plain = strings["api-keys"];
      draw();
    }

    function draw() {
      keepFocus(list, () => {
        if (!keys.length) {
          fill(list, emptyState("No client keys with limits yet.", ctx.readOnly ? "" : "Create one to give a team or a tool its own key, models and budget."));
          return;
        }
        const columns = ["Name", "Key", "Models", "Usage", "Expires", "Status", ...(ctx.readOnly ? [] : ["Actions"])];
        fill(list, table(columns, keys.map((key) => {
          const row = [h("strong", { class: "nowrap", text: key.name }), h("span", { class: "mono nowrap", text: key.key }),
            h("span", { class: "small", text: (key.models || []).length ? key.models.join(", ") : "all\u00a0models" }),
            usageCell(key),
            key.expires ? h("span", { title: dateTime(key.expires), text: relative(key.expires) }) : h("span", { class: "muted", text: "never" }),
            status(key)];
          if (!ctx.readOnly) row.push(actions(key));
          row.attrs = { "data-key": key.name };
          return row;
        }), { className: "keys-table" }));
      });
      fill(plainBox, plain.length ? [
        h("h2", { text: "Plain keys" }),
        h("p", { class: "muted", text: "Strings in api-keys: they work for every model with no limits. Give each user a client key above instead." }),
        h("ul", { class: "plain-keys" }, plain.map((k) => h("li", { class: "mono", text: maskSecret(k) }))),
      ] : []);
    }

    function actions(key) {
      const fk = (a) => `${key.name}:${a}`;
      return h("div", { class: "actions" },
        actionButton("Edit", () => editDialog(key), { kind: "small", focusKey: fk("edit") }),
        actionButton("Rotate", () => rotate(key), { kind: "small", focusKey: fk("rotate") }),
        actionButton(key.disabled ? "Enable" : "Disable", () => toggle(key), { kind: "small", focusKey: fk("toggle") }),
        actionButton("Delete", () => remove(key), { kind: "small danger", focusKey: fk("delete") }));
    }

    async function toggle(key) {
      try {
        await ctx.api.post(`/client-keys/${q(key.name)}/${key.disabled ? "enable" : "disable"}`);
        ctx.toast(`${key.name} ${key.disabled ? "enabled" : "disabled"}.`, "ok");
      } catch (e) {
        ctx.fail(e);
      }
      await refresh().catch(ctx.fail);
    }

    async function rotate(key) {
      if (!(await ctx.confirm("Rotate key", `Give ${key.name} a new secret? The old one stops working at once; limits and usage stay.`, { confirm: "Rotate" }))) return;
      try {
        const answer = await ctx.api.post(`/client-keys/${q(key.name)}/rotate`);
        await refresh().catch(ctx.fail);
        await ctx.secretDialog(`New secret for ${key.name}`, answer.key);
      } catch (e) {
        ctx.fail(e);
      }
    }

    async function remove(key) {
      if (!(await ctx.confirm("Delete key", `Delete ${key.name}? Clients using it are refused at once.`, { confirm: "Delete", danger: true }))) return;
      try {
        await ctx.api.delete(`/client-keys/${q(key.name)}`);
        ctx.toast(`${key.name} deleted.`, "ok");
      } catch (e) {
        ctx.fail(e);
      }
      await refresh().catch(ctx.fail);
    }

    function editDialog(existing) {
      const form = keyForm(existing);
      ctx.openDialog({
        title: existing ? `Edit ${existing.name}` : "New client key",
        body: form.fields,
        actions: [{ label: "Cancel" }, {
          label: existing ? "Save" : "Create key",
          kind: "primary",
          onClick: async () => {
            const body = form.read();
            if (!existing && !body.name) {
              form.name.focus();
              throw new Error("Give the key a name.");
            }
            if (existing) {
              await ctx.api.patch(`/client-keys/${q(existing.name)}`, { json: body });
              ctx.toast(`${existing.name} saved.`, "ok");
            } else {
              const answer = await ctx.api.post("/client-keys", { json: body });
              setTimeout(() => ctx.secretDialog(`Key for ${answer.name}`, answer.key), 0);
            }
            refresh().catch(ctx.fail);
          },
        }],
      });
    }

    ctx.every(REFRESH_MS, refresh);
  },
};
