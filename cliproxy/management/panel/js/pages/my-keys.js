// My keys: the signed-in user's own keys (and CLI login tokens), what each spent, new keys
// within the team's limits, and revoking. Nobody else's keys are ever listed here.

import { q } from "../api.js";
import { actionButton, badge, emptyState, field, fill, h, keepFocus, table } from "../dom.js";
import { dateTime, num, relative, usd } from "../format.js";

const REFRESH_MS = 10000;
const LIMITS = [
  ["max-budget-usd", "Budget (USD per period)", "any"],
  ["max-tokens-per-day", "Tokens per day", "1"],
  ["max-requests-per-minute", "Requests per minute", "1"],
  ["max-concurrent", "Requests at once", "1"],
];
const STATUS = { active: "ok", revoked: "muted", expired: "danger" };

function limitsText(key) {
  const parts = LIMITS.filter(([name]) => key[name] != null).map(([name, label]) =>
    `${label}: ${name === "max-budget-usd" ? usd(key[name]) : num(key[name])}`);
  return parts.length ? parts.join(" · ") : "no limits";
}

export default {
  id: "my-keys",
  title: "My keys",
  audience: "member",
  render(ctx) {
    const mayCreate = ctx.me.may_create_keys;
    const list = h("div");
    const tools = h("div", { class: "toolbar" });
    const note = h("p", { class: "muted" });
    if (mayCreate) tools.append(h("button", { type: "button", class: "primary", text: "New key", onclick: () => createDialog() }));
    else note.textContent = `Your role (${ctx.me.user.role}) may look at keys but not create or revoke them.`;
    ctx.el.append(tools, note, list);
    let keys = [];

    async function refresh() {
      keys = (await ctx.account.get("/keys")).keys;
      keepFocus(list, draw);
    }

    function draw() {
      if (!keys.length) {
        fill(list, emptyState("You have no keys yet.", mayCreate ? "Create one for each tool or machine that calls the proxy." : ""));
        return;
      }
      const columns = ["Name", "Kind", "Status", "Models", "Limits", "Spent this period", "Created", "Expires", ...(mayCreate ? ["Actions"] : [])];
      fill(list, table(columns, keys.map((key) => {
        const row = [
          h("strong", { text: key.name }),
          h("span", { text: key.kind === "cli" ? "CLI login" : "key" }),
          badge(key.status, STATUS[key.status] || "muted"),
          h("span", { class: "small", text: key.models.length ? key.models.join(", ") : "team's models" }),
          h("span", { class: "small", text: limitsText(key) }),
          h("span", { text: `${usd(key.usage.cost_usd_this_period)} · ${num(key.usage.requests_this_period)} requests` }),
          h("span", { title: dateTime(key.created), text: relative(key.created * 1000) }),
          key.expires ? h("span", { title: dateTime(key.expires), text: relative(key.expires * 1000) }) : h("span", { class: "muted", text: "never" }),
        ];
        if (mayCreate) {
          row.push(key.status === "revoked" ? h("span", { class: "muted", text: "—" })
            : actionButton("Revoke", () => revoke(key), { kind: "small danger", focusKey: `${key.id}:revoke` }));
        }
        row.attrs = { "data-key": key.name };
        return row;
      }), { className: "my-keys-table" }));
    }

    async function revoke(key) {
      if (!(await ctx.confirm("Revoke key", `Revoke ${key.name}? Anything using it is refused at once.`, { confirm: "Revoke", danger: true }))) return;
      try {
        await ctx.account.delete(`/keys/${q(key.id)}`);
        ctx.toast(`${key.name} revoked.`, "ok");
      } catch (e) {
        ctx.fail(e);
      }
      await refresh().catch(ctx.fail);
    }

    function createDialog() {
      const name = h("input", { type: "text", id: "new-key-name", autocomplete: "off", required: true });
      const models = h("input", { type: "text", id: "new-key-models", autocomplete: "off", placeholder: ctx.me.models.join(", ") });
      const expires = h("input", { type: "text", id: "new-key-expires", autocomplete: "off", placeholder: "2026-12-31" });
      const inputs = {};
      const fields = [
        field("Name", name, "Shown in your usage instead of the key."),
        field("Models", models, `Comma separated, within your team's: ${ctx.me.models.join(", ")}. Empty: all of them.`),
      ];
      for (const [yaml, label, step] of LIMITS) {
        inputs[yaml] = h("input", { type: "number", min: "0", step, id: `new-key-${yaml}`, inputmode: "decimal" });
        fields.push(field(label, inputs[yaml]));
      }
      fields.push(field("Expires", expires, "A date or date and time (UTC); empty for never."));
      ctx.openDialog({
        title: "New key",
        body: h("div", { class: "form-grid" }, fields),
        actions: [{ label: "Cancel" }, {
          label: "Create key",
          kind: "primary",
          onClick: async () => {
            if (!name.value.trim()) {
              name.focus();
              throw new Error("Give the key a name.");
            }
            const limits = {};
            for (const [yaml] of LIMITS) if (inputs[yaml].value.trim() !== "") limits[yaml] = Number(inputs[yaml].value);
            const body = { name: name.value.trim(), models: models.value.split(/[\s,]+/).filter(Boolean), limits, expires: expires.value.trim() || null };
            const made = await ctx.account.post("/keys", { json: body });
            refresh().catch(ctx.fail);
            setTimeout(() => ctx.secretDialog(`Key ${made.name}`, made.key), 0);
          },
        }],
      });
      name.focus();
    }

    ctx.every(REFRESH_MS, refresh);
  },
};
