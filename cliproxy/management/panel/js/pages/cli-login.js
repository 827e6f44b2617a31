// Where `cliproxy login` sends the browser: approve the sign-in of the CLI on this computer. The
// proxy only hands the code to a loopback address (the CLI itself), which trades it with its PKCE
// verifier for a personal token.

import { h } from "../dom.js";

export default {
  id: "cli-login",
  title: "Sign in the command line",
  audience: "member",
  hidden: true,
  render(ctx) {
    const params = new URLSearchParams(location.hash.split("?")[1] || "");
    const request = { redirect_uri: params.get("redirect_uri") || "", state: params.get("state") || "", code_challenge: params.get("code_challenge") || "" };
    const status = h("p", { role: "status" });
    if (!request.redirect_uri || !request.code_challenge) {
      ctx.el.append(h("p", { class: "form-error", text: "This page is opened by `cliproxy login`; run it again." }));
      return;
    }
    const approve = h("button", { type: "button", class: "primary", text: "Approve", onclick: async () => {
      approve.disabled = true;
      try {
        const answer = await ctx.account.post("/cli/authorize", { json: request });
        status.textContent = "Approved. Return to the terminal.";
        location.assign(answer.redirect);
      } catch (e) {
        status.textContent = e.message;
        approve.disabled = false;
      }
    } });
    ctx.el.append(
      h("p", { text: `The cliproxy command on this computer asks to act as ${ctx.me.user.email}. It gets a personal token that expires after ${ctx.me.cli_token_expiration_hours} hours.` }),
      h("p", { class: "muted small", text: `It is waiting at ${request.redirect_uri}. Approve only if you just ran cliproxy login.` }),
      h("div", { class: "toolbar" }, approve, h("a", { class: "button", href: "#/", text: "Cancel" })), status);
    approve.focus();
  },
};
