// The device code page: approve `cliproxy login --device` running on another machine by typing
// the code it shows.

import { field, h } from "../dom.js";

export default {
  id: "device",
  title: "Sign in a device",
  audience: "member",
  hidden: true,
  render(ctx) {
    const code = h("input", { type: "text", id: "device-code", autocomplete: "off", spellcheck: "false", placeholder: "BCDF-GHJK" });
    const status = h("p", { role: "status" });
    const form = h("form", { class: "device-form", novalidate: true },
      field("Code shown by cliproxy login --device", code),
      h("button", { type: "submit", class: "primary", text: "Approve device" }), status);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await ctx.account.post("/cli/device/approve", { json: { user_code: code.value.trim() } });
        status.textContent = "Approved. The command line is signed in.";
        code.value = "";
      } catch (e) {
        status.textContent = e.message;
      }
    });
    ctx.el.append(h("p", { text: `Approve a cliproxy command line to act as ${ctx.me.user.email}.` }), form);
    code.focus();
  },
};
