// Credentials: every upstream credential with its live state, and what an admin can do to one.

import { q } from "../api.js";
import { copyText } from "../dialogs.js";
import { actionButton, badge, emptyState, field, fill, h, keepFocus, table } from "../dom.js";
import { dateTime, duration, num, relative } from "../format.js";

const REFRESH_MS = 3000;
const FILES_MS = 15000;
const LOGIN_POLL_MS = 2000;

function stateOf(cred) {
  if (cred.disabled) return badge("Disabled", "muted");
  if (cred.refresh_error) return badge("Refresh failed", "danger");
  if (cred.expires && !cred.refreshable && new Date(cred.expires) < new Date()) return badge("Expired", "danger");
  if (cred.cooldowns.length) return badge("Cooling down", "warn");
  if (!cred.models) return badge("No models", "muted");
  return badge("Active", "ok");
}

function describe(cred) {
  const extra = [cred.email, cred.kind === "api-key" ? cred.key_hint : "", cred.base_url].filter(Boolean).join(" · ");
  return h("div", { class: "cell-main" }, h("strong", { class: "cred-name", text: cred.name }), extra ? h("div", { class: "muted small", text: extra }) : null);
}

function cooldownList(cred, fetchedAt) {
  if (!cred.cooldowns.length) return h("span", { class: "muted", text: "—" });
  return h("ul", { class: "cooldowns" }, cred.cooldowns.map((c) => {
    const until = fetchedAt + c.seconds * 1000;
    return h("li", null,
      h("span", { class: "mono", text: c.model || "all models" }), " ",
      h("span", { class: "countdown", "data-until": String(until), text: duration(c.seconds) }),
      c.status ? h("span", { class: "muted small", text: ` (${c.status}${c.reason ? ` ${c.reason}` : ""})` }) : null);
  }));
}

function tokenFacts(cred) {
  if (cred.kind !== "auth-file") return h("span", { class: "muted", text: "API key" });
  return h("div", { class: "small" },
    h("div", null, "Refreshed: ", cred.last_refresh ? h("time", { datetime: cred.last_refresh, title: dateTime(cred.last_refresh), text: relative(cred.last_refresh) }) : "—"),
    h("div", null, "Expires: ", cred.expires ? h("time", { datetime: cred.expires, title: dateTime(cred.expires), text: relative(cred.expires) }) : "—"),
    cred.refresh_error ? h("div", { class: "error-text", text: cred.refresh_error }) : null);
}

export default {
  id: "credentials",
  title: "Credentials",
  render(ctx) {
    let creds = [];
    let fetchedAt = Date.now();
    const tests = new Map(); // auth_index → last test result, kept across refreshes
    const filter = h("input", { type: "search", id: "cred-filter", placeholder: "Filter by name, provider or model", "aria-label": "Filter credentials" });
    const summary = h("p", { class: "muted", role: "status" });
    const list = h("div", { class: "cred-list" });
    const broken = h("div", { class: "broken-files" });
    const tools = h("div", { class: "toolbar" }, filter);
    if (!ctx.readOnly) tools.append(...adminTools());
    ctx.el.append(tools, summary, list, broken);
    filter.addEventListener("input", draw);

    async function refresh() {
      const data = await ctx.api.get("/credential-status");
      creds = data.credentials;
      fetchedAt = Date.now();
      draw();
    }

    async function refreshFiles() {
      const data = await ctx.api.get("/auth-files");
      const bad = data.files.filter((f) => f.status === "error");
      fill(broken, bad.length ? [h("h2", { text: "Files that could not be loaded" }), table(["File", "Problem", ""], bad.map((f) => [
        h("span", { class: "mono", text: f.name }), h("span", { class: "error-text", text: f.status_message }),
        ctx.readOnly ? "" : actionButton("Delete", () => remove(f.name), { kind: "danger small" }),
      ]))] : []);
    }

    function draw() {
      const needle = filter.value.trim().toLowerCase();
      const shown = creds.filter((c) => !needle || [c.name, c.provider, c.email, c.label, c.base_url, ...c.cooldowns.map((x) => x.model)]
        .some((v) => v && String(v).toLowerCase().includes(needle)));
      const cooling = creds.filter((c) => c.cooldowns.length).length;
      const disabled = creds.filter((c) => c.disabled).length;
      summary.textContent = `${creds.length} credentials · ${cooling} cooling down · ${disabled} disabled`;
      keepFocus(list, () => {
        if (!creds.length) {
          fill(list, emptyState("No upstream credentials yet.",
            ctx.readOnly ? "An admin can add provider keys on the Providers page or log in to a provider here." : "Add a provider key on the Providers page, upload an auth file, or log in to a provider."));
          return;
        }
        if (!shown.length) {
          fill(list, emptyState("Nothing matches the filter."));
          return;
        }
        const columns = ["Credential", "Provider", "State", "Cooldowns", "Token", "Requests", ...(ctx.readOnly ? [] : ["Actions"])];
        fill(list, table(columns, shown.map((cred) => {
          const row = [describe(cred), h("span", null, cred.provider, h("div", { class: "muted small", text: cred.kind === "auth-file" ? `file · ${cred.type}` : "config key" })),
            stateOf(cred), cooldownList(cred, fetchedAt), tokenFacts(cred),
            h("span", { class: "small", text: `${num(cred.success)} ok · ${num(cred.failed)} failed` })];
          if (!ctx.readOnly) row.push(actions(cred));
          row.attrs = { "data-cred": cred.name, "data-auth-index": cred.auth_index };
          return row;
        }), { className: "cred-table" }));
      });
    }

    function actions(cred) {
      const key = (name) => `${cred.auth_index}:${name}`;
      const result = tests.get(cred.auth_index);
      return h("div", { class: "actions" },
        actionButton(cred.disabled ? "Enable" : "Disable", () => setDisabled(cred, !cred.disabled), { focusKey: key("toggle"), kind: "small" }),
        actionButton("Reset cooldowns", () => reset(cred), { focusKey: key("reset"), kind: "small", disabled: !cred.cooldowns.length }),
        cred.refreshable ? actionButton("Refresh now", () => refreshToken(cred), { focusKey: key("refresh"), kind: "small" }) : null,
        actionButton("Test now", () => test(cred), { focusKey: key("test"), kind: "small" }),
        cred.kind === "auth-file" ? actionButton("Delete", () => remove(cred.name), { focusKey: key("delete"), kind: "small danger" }) : null,
        result ? h("p", { class: `test-result small ${result.result === "ok" ? "ok-text" : "error-text"}`, role: "status", text: `Test: ${result.result}${result.detail ? ` — ${result.detail}` : ""}` }) : null);
    }

    async function run(action, done) {
      try {
        const answer = await action();
        if (done) ctx.toast(typeof done === "function" ? done(answer) : done, "ok");
      } catch (error) {
        ctx.fail(error);
      }
      await refresh().catch(ctx.fail);
    }

    const setDisabled = (cred, disabled) => run(() => ctx.api.patch("/auth-files/status", { json: { auth_index: cred.auth_index, disabled } }),
      `${cred.name} ${disabled ? "disabled" : "enabled"}.`);
    const reset = (cred) => run(() => ctx.api.post("/reset-quota", { json: { auth_index: cred.auth_index } }), `Cooldowns of ${cred.name} cleared.`);
    const refreshToken = (cred) => run(() => ctx.api.post(`/credentials/${q(cred.auth_index)}/refresh`), `${cred.name} refreshed.`);
    const test = (cred) => run(async () => {
      const answer = await ctx.api.post(`/credentials/${q(cred.auth_index)}/test`);
      tests.set(cred.auth_index, answer);
      return answer;
    }, (answer) => `Test of ${cred.name}: ${answer.result}.`);

    async function remove(name) {
      if (!(await ctx.confirm("Delete auth file", `Delete ${name} from the auth directory? The proxy stops using it at once.`, { confirm: "Delete", danger: true }))) return;
      await run(() => ctx.api.delete(`/auth-files?name=${q(name)}`), `${name} deleted.`);
      await refreshFiles().catch(ctx.fail);
    }

    // ---------------------------------------------------------------- adding credentials

    function adminTools() {
      const upload = h("input", { type: "file", accept: ".json,application/json", multiple: true, class: "visually-hidden", id: "auth-upload", tabindex: "-1" });
      upload.addEventListener("change", async () => {
        const form = new FormData();
        for (const file of upload.files) form.append("file", file, file.name);
        upload.value = "";
        await run(() => ctx.api.post("/auth-files", { form }), "Auth file uploaded.");
        await refreshFiles().catch(ctx.fail);
      });
      const tools = [upload, h("button", { type: "button", text: "Upload auth file", onclick: () => upload.click() })];
      if (ctx.who.logins.browser.length || ctx.who.logins.device.length) tools.push(h("button", { type: "button", text: "Log in to a provider", onclick: loginDialog }));
      for (const type of ctx.who.logins.import) tools.push(h("button", { type: "button", text: `Import ${type} service account`, onclick: () => importDialog(type) }));
      return tools;
    }

    function importDialog(type) {
      const file = h("input", { type: "file", accept: ".json,application/json", id: "import-file", required: true });
      const location = h("input", { type: "text", id: "import-location", placeholder: "us-central1" });
      ctx.openDialog({
        title: `Import a ${type} service account`,
        body: [field("Service-account key (JSON)", file), field("Location", location, "Optional; the region requests go to.")],
        actions: [{ label: "Cancel" }, {
          label: "Import",
          kind: "primary",
          onClick: async () => {
            if (!file.files.length) throw new Error("Choose the key file first.");
            const form = new FormData();
            form.append("file", file.files[0], file.files[0].name);
            if (location.value.trim()) form.append("location", location.value.trim());
            const answer = await ctx.api.post(`/${q(type)}/import`, { form });
            ctx.toast(`Imported as ${answer["auth-file"]}.`, "ok");
            refresh().catch(ctx.fail);
          },
        }],
      });
    }

    function loginDialog() {
      const choices = [
        ...ctx.who.logins.browser.map((b) => ({ value: `browser:${b.type}`, label: `${b.type}: sign in with the browser`, start: (box) => browserLogin(b, box) })),
        ...ctx.who.logins.device.map((t) => ({ value: `device:${t}`, label: `${t}: device code (for a proxy on another machine)`, start: (box) => deviceLogin(t, box) })),
      ];
      const select = h("select", { id: "login-choice" }, choices.map((c) => h("option", { value: c.value, text: c.label })));
      const box = h("div", { class: "login-flow" });
      const flow = { state: "", timer: 0, done: false };
      const start = h("button", { type: "button", class: "primary", text: "Start" });
      start.addEventListener("click", async () => {
        start.disabled = true;
        select.disabled = true;
        try {
          await choices.find((c) => c.value === select.value).start(box, flow);
          box.querySelector("a, button")?.focus(); // the pressed Start button is disabled now
        } catch (e) {
          fill(box, h("p", { class: "form-error", role: "alert", text: e.message }));
          start.disabled = false;
          select.disabled = false;
        }
      });
      ctx.openDialog({ title: "Log in to a provider", body: [field("Provider and method", select), start, box], actions: [{ label: "Close" }] }).then(() => {
        clearTimeout(flow.timer);
        if (flow.state && !flow.done) ctx.api.delete(`/oauth-session?state=${q(flow.state)}`).catch(() => {});
      });

      function watch(state, status) {
        flow.state = state;
        const poll = async () => {
          let answer;
          try {
            answer = await ctx.api.get(`/get-auth-status?state=${q(state)}`);
          } catch (e) {
            answer = { status: "error", error: e.message };
          }
          if (answer.status === "wait") {
            flow.timer = setTimeout(poll, LOGIN_POLL_MS);
            return;
          }
          flow.done = true;
          if (answer.status === "ok") {
            fill(status, h("p", { class: "ok-text", text: `Logged in: saved as ${answer.file}.` }));
            refresh().catch(ctx.fail);
          } else {
            fill(status, h("p", { class: "form-error", text: `Login failed: ${answer.error}` }));
          }
        };
        flow.timer = setTimeout(poll, LOGIN_POLL_MS);
      }

      async function browserLogin(login, target) {
        const answer = await ctx.api.get(`/${login.path}?is_webui=1`);
        const status = h("p", { class: "muted", role: "status", text: "Waiting for the provider to send you back…" });
        const pasted = h("input", { type: "url", id: "login-paste", placeholder: "http://localhost:…/callback?code=…" });
        const send = actionButton("Send", async () => {
          try {
            await ctx.api.post("/oauth-callback", { json: { redirect_url: pasted.value.trim(), state: answer.state } });
          } catch (e) {
            ctx.fail(e);
          }
        });
        fill(target,
          h("ol", { class: "steps" },
            h("li", null, h("a", { href: answer.url, target: "_blank", rel: "noopener noreferrer", class: "button primary", text: "Open the provider's sign-in page" })),
            h("li", null, "Approve the access. This dialog notices by itself when the provider sends the browser back."),
            h("li", null, "If the browser ends on a page that does not load (the proxy runs on another machine), paste that page's address here:",
              h("div", { class: "inline-form" }, pasted, send))),
          status);
        watch(answer.state, status);
      }

      async function deviceLogin(type, target) {
        const answer = await ctx.api.post(`/device-login/${q(type)}`);
        const status = h("p", { class: "muted", role: "status", text: "Waiting for you to approve the code…" });
        const codeEl = h("output", { class: "user-code mono", text: answer.user_code, "aria-label": "Device code" });
        fill(target,
          h("ol", { class: "steps" },
            h("li", null, "Open ", h("a", { href: answer.verification_url, target: "_blank", rel: "noopener noreferrer", text: answer.verification_url }), " on any device."),
            h("li", null, "Enter this code: ", codeEl, " ", h("button", { type: "button", class: "small", text: "Copy code", onclick: () => copyText(answer.user_code) })),
            h("li", null, `The login finishes here by itself (the code is valid for ${Math.round(answer.expires_in / 60)} minutes).`)),
          status);
        watch(answer.state, status);
      }
    }

    ctx.every(REFRESH_MS, refresh);
    ctx.every(FILES_MS, refreshFiles);
    ctx.tick(1000, () => {
      const now = Date.now();
      for (const el of list.querySelectorAll(".countdown")) {
        const left = (Number(el.dataset.until) - now) / 1000;
        el.textContent = left > 0 ? duration(left) : "ending";
      }
    });
  },
};
