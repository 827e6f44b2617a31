// Users: who may sign in, their role and team, what they spent; change a role or team, disable,
// delete. New users arrive through invitations (or single sign-on).

import { q } from "../api.js";
import { actionButton, badge, emptyState, field, fill, h, keepFocus, table } from "../dom.js";
import { num, usd } from "../format.js";

const REFRESH_MS = 10000;
export const ROLES = ["admin", "admin-viewer", "user", "user-viewer"];

export function select(id, values, chosen, labels = {}) {
  return h("select", { id }, values.map((v) => h("option", { value: v, text: labels[v] || v || "(none)", selected: v === chosen })));
}

export default {
  id: "users",
  title: "Users",
  audience: "accounts",
  render(ctx) {
    const list = h("div");
    ctx.el.append(h("p", { class: "muted", text: "Invite people on the Invitations page; single sign-on users appear after their first sign-in." }), list);
    let users = [];
    let teams = [];

    async function refresh() {
      const [u, t] = await Promise.all([ctx.api.get("/users"), ctx.api.get("/teams")]);
      users = u.users;
      teams = t.teams.map((team) => team.name);
      keepFocus(list, draw);
    }

    function draw() {
      if (!users.length) {
        fill(list, emptyState("No users yet.", "Invite someone to let them sign in and make their own keys."));
        return;
      }
      const columns = ["Email", "Role", "Team", "Status", "Keys", "Spent this period", ...(ctx.readOnly ? [] : ["Actions"])];
      fill(list, table(columns, users.map((user) => {
        const row = [h("strong", { text: user.email }), user.role, user.team || "—",
          user.disabled ? badge("disabled", "muted") : badge("active", "ok"), num(user.keys), usd(user.spend.cost_usd_this_period)];
        if (!ctx.readOnly) {
          const fk = (a) => `${user.email}:${a}`;
          row.push(h("div", { class: "actions" },
            actionButton("Edit", () => edit(user), { kind: "small", focusKey: fk("edit") }),
            actionButton(user.disabled ? "Enable" : "Disable", () => change(user, { disabled: !user.disabled }), { kind: "small", focusKey: fk("toggle") }),
            actionButton("Delete", () => remove(user), { kind: "small danger", focusKey: fk("delete") })));
        }
        row.attrs = { "data-user": user.email };
        return row;
      }), { className: "users-table" }));
    }

    async function change(user, body) {
      try {
        await ctx.api.patch(`/users/${q(user.email)}`, { json: body });
        ctx.toast(`${user.email} saved.`, "ok");
      } catch (e) {
        ctx.fail(e);
      }
      await refresh().catch(ctx.fail);
    }

    async function remove(user) {
      if (!(await ctx.confirm("Delete user", `Delete ${user.email}? Their sessions end and their keys are revoked.`, { confirm: "Delete", danger: true }))) return;
      try {
        await ctx.api.delete(`/users/${q(user.email)}`);
        ctx.toast(`${user.email} deleted.`, "ok");
      } catch (e) {
        ctx.fail(e);
      }
      await refresh().catch(ctx.fail);
    }

    function edit(user) {
      const role = select("user-role", ROLES, user.role);
      const team = select("user-team", ["", ...teams], user.team);
      ctx.openDialog({
        title: `Edit ${user.email}`,
        body: h("div", { class: "form-grid" }, field("Role", role), field("Team", team)),
        actions: [{ label: "Cancel" }, { label: "Save", kind: "primary", onClick: () => change(user, { role: role.value, team: team.value }) }],
      });
    }

    ctx.every(REFRESH_MS, refresh);
  },
};
