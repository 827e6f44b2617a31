// Teams and access groups: which models a team's members may use, what the team may spend (USD
// and/or credits per period, with what is left), the ceiling of its members' keys, its state.

import { q } from "../api.js";
import { actionButton, badge, emptyState, field, fill, h, keepFocus, meter, table } from "../dom.js";
import { num, usd } from "../format.js";
import { select } from "./users.js";

const REFRESH_MS = 10000;
const STATE = { active: "ok", paused: "warn", suspended: "danger" };
const NUMBERS = [["budget-usd", "Budget (USD per period)"], ["budget-credits", "Credits per period"], ["credits-per-usd", "Credits per USD"]];

function remaining(team) {
  const s = team.status;
  const parts = [];
  if (team["budget-credits"] != null) parts.push(meter("Credits", s.credits_used_this_period, team["budget-credits"], num));
  if (team["budget-usd"] != null) parts.push(meter("Budget", s.spent_usd_this_period, team["budget-usd"], usd));
  if (!parts.length) parts.push(h("span", { class: "small", text: `${usd(s.spent_usd_this_period)} spent, no budget` }));
  return h("div", { class: "usage" }, parts);
}

export default {
  id: "teams",
  title: "Teams",
  audience: "accounts",
  render(ctx) {
    const list = h("div");
    const groupsBox = h("div");
    const tools = h("div", { class: "toolbar" });
    if (!ctx.readOnly) {
      tools.append(h("button", { type: "button", class: "primary", text: "New team", onclick: () => teamDialog(null) }),
        h("button", { type: "button", text: "New access group", onclick: () => groupDialog("", []) }));
    }
    ctx.el.append(tools, list, h("h2", { text: "Access groups" }), groupsBox);
    let teams = [];
    let groups = {};

    async function refresh() {
      const [t, g] = await Promise.all([ctx.api.get("/teams"), ctx.api.get("/access-groups")]);
      teams = t.teams;
      groups = g["access-groups"];
      keepFocus(list, draw);
      keepFocus(groupsBox, drawGroups);
    }

    function draw() {
      if (!teams.length) {
        fill(list, emptyState("No teams yet.", ctx.readOnly ? "" : "A team shares a budget and the models of its access groups."));
        return;
      }
      const columns = ["Team", "State", "Access groups", "This period", "Members", ...(ctx.readOnly ? [] : ["Actions"])];
      fill(list, table(columns, teams.map((team) => {
        const row = [h("strong", { text: team.name }), badge(team.state, STATE[team.state]),
          team["access-groups"].length ? team["access-groups"].join(", ") : "all models", remaining(team), num(team.members.length)];
        if (!ctx.readOnly) {
          const fk = (a) => `${team.name}:${a}`;
          const next = team.state === "active" ? [["Pause", "paused"], ["Suspend", "suspended"]] : [["Activate", "active"]];
          row.push(h("div", { class: "actions" },
            actionButton("Edit", () => teamDialog(team), { kind: "small", focusKey: fk("edit") }),
            next.map(([label, value]) => actionButton(label, () => save(team.name, { state: value }), { kind: "small", focusKey: fk(value) })),
            actionButton("Delete", () => removeTeam(team), { kind: "small danger", focusKey: fk("delete") })));
        }
        row.attrs = { "data-team": team.name };
        return row;
      }), { className: "teams-table" }));
    }

    function drawGroups() {
      const names = Object.keys(groups);
      if (!names.length) {
        fill(groupsBox, emptyState("No access groups.", "An access group names model patterns once, for any number of teams."));
        return;
      }
      fill(groupsBox, table(["Group", "Models", ...(ctx.readOnly ? [] : ["Actions"])], names.map((name) => {
        const row = [h("strong", { text: name }), groups[name].join(", ")];
        if (!ctx.readOnly) {
          row.push(h("div", { class: "actions" },
            actionButton("Edit", () => groupDialog(name, groups[name]), { kind: "small", focusKey: `group:${name}:edit` }),
            actionButton("Delete", () => removeGroup(name), { kind: "small danger", focusKey: `group:${name}:delete` })));
        }
        row.attrs = { "data-group": name };
        return row;
      }), { className: "groups-table" }));
    }

    async function save(name, body) {
      try {
        await ctx.api.patch(`/teams/${q(name)}`, { json: body });
        ctx.toast(`${name} saved.`, "ok");
      } catch (e) {
        ctx.fail(e);
      }
      await refresh().catch(ctx.fail);
    }

    async function removeTeam(team) {
      if (!(await ctx.confirm("Delete team", `Delete ${team.name}? (Only a team without members can go.)`, { confirm: "Delete", danger: true }))) return;
      try {
        await ctx.api.delete(`/teams/${q(team.name)}`);
      } catch (e) {
        ctx.fail(e);
      }
      await refresh().catch(ctx.fail);
    }

    async function removeGroup(name) {
      try {
        await ctx.api.delete(`/access-groups/${q(name)}`);
      } catch (e) {
        ctx.fail(e);
      }
      await refresh().catch(ctx.fail);
    }

    function teamDialog(team) {
      const name = h("input", { type: "text", id: "team-name", value: team ? team.name : "", readonly: Boolean(team), autocomplete: "off" });
      const state = select("team-state", ["active", "paused", "suspended"], team ? team.state : "active");
      const period = select("team-period", ["month", "week", "day"], team ? team["budget-period"] : "month");
      const chosen = new Set(team ? team["access-groups"] : []);
      const boxes = Object.keys(groups).map((g) => {
        const box = h("input", { type: "checkbox", id: `team-group-${g}`, value: g, checked: chosen.has(g) });
        return h("div", { class: "field check" }, box, h("label", { for: box.id, text: g }));
      });
      const inputs = {};
      const fields = [field("Name", name), field("State", state), field("Budget period", period)];
      for (const [yaml, label] of NUMBERS) {
        inputs[yaml] = h("input", { type: "number", min: "0", step: "any", id: `team-${yaml}`, value: team && team[yaml] != null ? String(team[yaml]) : "" });
        fields.push(field(label, inputs[yaml]));
      }
      const ceiling = h("input", { type: "number", min: "0", step: "any", id: "team-key-budget", value: team && team["key-ceiling"]["max-budget-usd"] != null ? String(team["key-ceiling"]["max-budget-usd"]) : "" });
      fields.push(field("Most a member's key may spend (USD)", ceiling));
      ctx.openDialog({
        title: team ? `Edit ${team.name}` : "New team",
        body: [h("div", { class: "form-grid" }, fields), h("fieldset", null, h("legend", { text: "Access groups (none: every model)" }), boxes)],
        actions: [{ label: "Cancel" }, {
          label: team ? "Save" : "Create team",
          kind: "primary",
          onClick: async () => {
            const body = { state: state.value, "budget-period": period.value, "access-groups": boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value) };
            for (const [yaml] of NUMBERS) {
              const raw = inputs[yaml].value.trim();
              if (raw !== "" || team) body[yaml] = raw === "" ? (yaml === "credits-per-usd" ? 100 : null) : Number(raw);
            }
            const keyBudget = ceiling.value.trim();
            body["key-ceiling"] = keyBudget === "" ? {} : { ...(team ? team["key-ceiling"] : {}), "max-budget-usd": Number(keyBudget) };
            if (team) await ctx.api.patch(`/teams/${q(team.name)}`, { json: body });
            else await ctx.api.post("/teams", { json: { name: name.value.trim(), ...body } });
            refresh().catch(ctx.fail);
          },
        }],
      });
    }

    function groupDialog(existing, models) {
      const name = h("input", { type: "text", id: "group-name", value: existing, readonly: Boolean(existing), autocomplete: "off" });
      const patterns = h("input", { type: "text", id: "group-models", value: models.join(", "), placeholder: "gpt-4o*, claude-*", autocomplete: "off" });
      ctx.openDialog({
        title: existing ? `Edit ${existing}` : "New access group",
        body: h("div", { class: "form-grid" }, field("Name", name), field("Models", patterns, "Model ids or glob patterns, comma separated.")),
        actions: [{ label: "Cancel" }, {
          label: "Save",
          kind: "primary",
          onClick: async () => {
            await ctx.api.put(`/access-groups/${q(name.value.trim())}`, { json: { models: patterns.value.split(/[\s,]+/).filter(Boolean) } });
            refresh().catch(ctx.fail);
          },
        }],
      });
    }

    ctx.every(REFRESH_MS, refresh);
  },
};
