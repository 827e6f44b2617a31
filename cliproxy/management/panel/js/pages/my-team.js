// My team: its state, the models it may use and what is left of its budget or credits this period.

import { badge, emptyState, fill, h, meter } from "../dom.js";
import { num, usd } from "../format.js";

const REFRESH_MS = 15000;
const STATE = { active: "ok", paused: "warn", suspended: "danger" };

export default {
  id: "my-team",
  title: "My team",
  audience: "member",
  render(ctx) {
    const body = h("div");
    ctx.el.append(body);

    async function refresh() {
      const { team } = await ctx.account.get("/team");
      if (!team) {
        fill(body, emptyState("You are not in a team.", "Your keys have only their own limits."));
        return;
      }
      const credits = team.budget_credits != null;
      const parts = [
        h("p", null, h("strong", { text: team.name }), " ", badge(team.state, STATE[team.state] || "muted")),
        h("p", { class: "muted", text: `Models: ${team.models.join(", ")} · period: ${team.budget_period}, renews ${team.period_resets.slice(0, 10)}` }),
      ];
      if (credits) {
        parts.push(h("p", { class: "stat-value team-remaining", text: `${num(team.remaining_credits)} credits left` }),
          meter(`Credits used this ${team.budget_period}`, team.credits_used_this_period, team.budget_credits, num));
      }
      if (team.budget_usd != null) {
        parts.push(h("p", { class: "stat-value team-remaining", text: `${usd(team.remaining_usd)} left` }),
          meter(`Spent this ${team.budget_period}`, team.spent_usd_this_period, team.budget_usd, usd));
      }
      if (!credits && team.budget_usd == null) parts.push(h("p", { text: `No team budget. Spent this ${team.budget_period}: ${usd(team.spent_usd_this_period)}.` }));
      fill(body, h("div", { class: "card my-team" }, parts));
    }

    ctx.every(REFRESH_MS, refresh);
  },
};
