// Invitations: invite an email with a role and team; the single-use link is shown once, to send
// to that person. Open, used and expired invitations are listed (never their links).

import { q } from "../api.js";
import { actionButton, badge, emptyState, field, fill, h, keepFocus, table } from "../dom.js";
import { dateTime, relative } from "../format.js";
import { ROLES, select } from "./users.js";

const REFRESH_MS = 10000;

function state(invitation) {
  if (invitation.used) return badge("used", "muted");
  if (invitation.expires * 1000 < Date.now()) return badge("expired", "danger");
  return badge("open", "info");
}

export default {
  id: "invitations",
  title: "Invitations",
  audience: "accounts",
  render(ctx) {
    const list = h("div");
    const tools = h("div", { class: "toolbar" });
    if (!ctx.readOnly) tools.append(h("button", { type: "button", class: "primary", text: "Invite someone", onclick: () => invite() }));
    ctx.el.append(tools, list);
    let invitations = [];
    let teams = [];

    async function refresh() {
      const [i, t] = await Promise.all([ctx.api.get("/invitations"), ctx.api.get("/teams")]);
      invitations = i.invitations;
      teams = t.teams.map((team) => team.name);
      keepFocus(list, draw);
    }

    function draw() {
      if (!invitations.length) {
        fill(list, emptyState("No invitations yet.", ctx.readOnly ? "" : "Invite someone: they choose a password and can then sign in."));
        return;
      }
      const columns = ["Email", "Role", "Team", "State", "Expires", "Invited by", ...(ctx.readOnly ? [] : ["Actions"])];
      fill(list, table(columns, invitations.map((inv) => {
        const row = [h("strong", { text: inv.email }), inv.role, inv.team || "—", state(inv),
          h("span", { title: dateTime(inv.expires), text: relative(inv.expires * 1000) }), inv.invited_by || "management key"];
        if (!ctx.readOnly) {
          row.push(inv.used ? h("span", { class: "muted", text: "—" })
            : actionButton("Withdraw", () => withdraw(inv), { kind: "small danger", focusKey: `${inv.id}:withdraw` }));
        }
        row.attrs = { "data-invitation": inv.email };
        return row;
      }), { className: "invitations-table" }));
    }

    async function withdraw(inv) {
      try {
        await ctx.api.delete(`/invitations/${q(inv.id)}`);
        ctx.toast(`Invitation for ${inv.email} withdrawn.`, "ok");
      } catch (e) {
        ctx.fail(e);
      }
      await refresh().catch(ctx.fail);
    }

    function invite() {
      const email = h("input", { type: "email", id: "invite-email", autocomplete: "off", required: true });
      const role = select("invite-role", ROLES, "user");
      const team = select("invite-team", ["", ...teams], "");
      ctx.openDialog({
        title: "Invite someone",
        body: h("div", { class: "form-grid" }, field("Email", email), field("Role", role), field("Team", team)),
        actions: [{ label: "Cancel" }, {
          label: "Create invitation",
          kind: "primary",
          onClick: async () => {
            const made = await ctx.api.post("/invitations", { json: { email: email.value.trim(), role: role.value, team: team.value } });
            refresh().catch(ctx.fail);
            setTimeout(() => ctx.secretDialog(`Invitation for ${made.email}`, made.link,
              `Send this link to ${made.email}. It works once, until ${dateTime(made.expires)}, and is not shown again.`), 0);
          },
        }],
      });
      email.focus();
    }

    ctx.every(REFRESH_MS, refresh);
  },
};
