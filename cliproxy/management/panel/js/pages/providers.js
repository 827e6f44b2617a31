// Providers: the proxy's settings and its provider key lists, as forms over the existing endpoints.

import { q } from "../api.js";
import { actionButton, badge, emptyState, field, fill, h, keepFocus, table, uniqueId } from "../dom.js";
import { maskSecret } from "../format.js";

const COMPAT = "openai-compatibility";
const SETTINGS = [
  { key: "routing/strategy", label: "Routing strategy", type: "select", options: ["round-robin", "fill-first", "weighted-round-robin"], read: (c) => c.routing.strategy, hint: "How a credential is picked among the ready ones." },
  { key: "request-retry", label: "Retry rounds", type: "number", hint: "Extra rounds over the credentials after all of them failed." },
  { key: "max-retry-credentials", label: "Credentials per round", type: "number", hint: "0 tries every credential." },
  { key: "max-retry-interval", label: "Longest wait for a cooling credential (s)", type: "number", hint: "0 never waits." },
  { key: "proxy-url", label: "Upstream proxy URL", type: "text", hint: "http://, https:// or socks5://; empty for direct connections." },
  { key: "disable-cooling", label: "Never cool credentials down", type: "bool" },
  { key: "force-model-prefix", label: "Require the model prefix", type: "bool" },
  { key: "passthrough-headers", label: "Pass client headers upstream", type: "bool" },
  { key: "ws-auth", label: "WebSocket relay needs a client key", type: "bool" },
  { key: "request-log", label: "Log every request", type: "bool" },
  { key: "logging-to-file", label: "Write the log to files", type: "bool" },
  { key: "usage-statistics-enabled", label: "Queue usage records for collectors", type: "bool" },
  { key: "debug", label: "Debug logging", type: "bool" },
];

function valueOf(config, setting) {
  return setting.read ? setting.read(config) : config[setting.key];
}

/** An entry as it goes back in a PUT: without the listing-only `auth-index`. */
function stored(entry) {
  const { "auth-index": _ignored, ...rest } = entry;
  return rest;
}

export default {
  id: "providers",
  title: "Providers",
  render(ctx) {
    const settingsBox = h("section", { class: "card", "aria-labelledby": "settings-title" });
    const lists = h("div", { class: "provider-lists" });
    ctx.el.append(settingsBox, lists);
    const tables = new Map(); // section → {rows, entries, shown}

    async function loadSettings() {
      const config = await ctx.api.get("/config");
      const controls = SETTINGS.map((setting) => settingControl(setting, valueOf(config, setting)));
      fill(settingsBox, h("h2", { id: "settings-title", text: "Settings" }),
        ctx.readOnly ? h("p", { class: "muted", text: "Read-only: viewer keys cannot change settings." }) : h("p", { class: "muted", text: "Each change is saved to config.yaml and live at once." }),
        h("div", { class: "form-grid settings" }, controls));
    }

    function settingControl(setting, value) {
      const id = `setting-${setting.key.replace(/\W/g, "-")}`;
      const note = h("span", { class: "save-status small", role: "status" });
      let control;
      if (setting.type === "bool") control = h("input", { type: "checkbox", id, checked: Boolean(value), disabled: ctx.readOnly });
      else if (setting.type === "select") control = h("select", { id, disabled: ctx.readOnly }, setting.options.map((o) => h("option", { value: o, text: o, selected: o === value })));
      else control = h("input", { type: setting.type, id, value: value ?? "", min: setting.type === "number" ? "0" : null, disabled: ctx.readOnly, autocomplete: "off" });
      control.addEventListener("change", async () => {
        let v = setting.type === "bool" ? control.checked : control.value;
        if (setting.type === "number") v = Number(v || 0);
        note.textContent = "Saving…";
        note.className = "save-status small";
        try {
          await ctx.api.put(`/${setting.key}`, { json: { value: v } });
          note.textContent = "Saved";
          note.classList.add("ok-text");
        } catch (e) {
          note.textContent = e.message;
          note.classList.add("error-text");
          if (e.kind !== "http") ctx.fail(e);
        }
      });
      if (setting.type === "bool") {
        return h("div", { class: "field check" }, control, h("label", { for: id, text: setting.label }), note);
      }
      const wrapped = field(setting.label, control, setting.hint);
      wrapped.append(note);
      return wrapped;
    }

    async function loadLists() {
      const sections = ctx.who.providers || [];
      const answers = await Promise.all(sections.map((s) => ctx.api.get(`/${s}`)));
      sections.forEach((section, i) => {
        let part = tables.get(section);
        if (!part) {
          part = { rows: h("div"), entries: [], shown: "" };
          const compat = section === COMPAT;
          tables.set(section, part);
          lists.append(h("section", { class: "card provider", "aria-labelledby": `title-${section}`, "data-section": section },
            h("h2", { id: `title-${section}`, text: compat ? "OpenAI-compatible providers" : section }), part.rows,
            ctx.readOnly ? null : compat ? compatForm(part) : keyForm(section, part)));
        }
        part.entries = answers[i][section] || [];
        const shown = JSON.stringify(part.entries);
        if (shown === part.shown) return;
        part.shown = shown;
        keepFocus(part.rows, () => fill(part.rows, section === COMPAT ? compatTable(part.entries) : keyTable(section, part.entries)));
      });
    }

    function keyTable(section, entries) {
      const columns = ["#", "API key", "Base URL", "Prefix", "Models", "State", ...(ctx.readOnly ? [] : ["Actions"])];
      const rows = entries.map((e, i) => {
        const off = (e["excluded-models"] || []).includes("*");
        const row = [String(i), h("span", { class: "mono", text: maskSecret(e["api-key"]) || "—" }), e["base-url"] || h("span", { class: "muted", text: "default" }),
          e.prefix || "—", (e.models || []).length ? e.models.map((m) => m.alias || m.name).join(", ") : h("span", { class: "muted", text: "built-in list" }),
          off ? badge("Off", "muted") : badge("On", "ok")];
        if (!ctx.readOnly) {
          row.push(h("div", { class: "actions" },
            actionButton(off ? "Enable" : "Disable", () => change(ctx.api.patch("/auth-files/status", { json: { auth_index: e["auth-index"], disabled: !off } })), { kind: "small", focusKey: `${section}:${i}:toggle` }),
            actionButton("Delete", () => removeEntry(section, i), { kind: "small danger", focusKey: `${section}:${i}:delete` })));
        }
        return row;
      });
      return entries.length ? table(columns, rows) : emptyState(`No ${section} entries.`);
    }

    function keyForm(section, part) {
      return addForm(section, [["api-key", "API key", "password"], ["base-url", "Base URL (optional)", "url"], ["prefix", "Prefix (optional)", "text"]],
        (values) => [...part.entries.map(stored), values]);
    }

    function compatTable(entries) {
      const columns = ["Name", "Base URL", "Keys", "Models", ...(ctx.readOnly ? [] : ["Actions"])];
      const rows = entries.map((e, i) => {
        const keys = e["api-key-entries"] || [];
        const row = [h("strong", { text: e.name }), e["base-url"], h("span", { class: "mono small", text: keys.map((k) => maskSecret(k["api-key"])).join(", ") || "—" }),
          (e.models || []).map((m) => m.alias || m.name).join(", ") || "—"];
        if (!ctx.readOnly) row.push(actionButton("Delete", () => removeCompat(e.name), { kind: "small danger", focusKey: `${COMPAT}:${i}:delete` }));
        return row;
      });
      return entries.length ? table(columns, rows) : emptyState("No OpenAI-compatible providers.");
    }

    function compatForm(part) {
      return addForm(COMPAT, [["name", "Name", "text"], ["base-url", "Base URL", "url"], ["api-key", "API key", "password"], ["models", "Models (comma separated)", "text"]],
        (v) => [...part.entries.map((e) => ({ ...e, "api-key-entries": (e["api-key-entries"] || []).map(stored) })), {
          name: v.name,
          "base-url": v["base-url"],
          "api-key-entries": v["api-key"] ? [{ "api-key": v["api-key"] }] : [],
          models: (v.models || "").split(/[\s,]+/).filter(Boolean).map((name) => ({ name })),
        }]);
    }

    function addForm(section, inputs, listWith) {
      const controls = inputs.map(([name, label, type]) => {
        const input = h("input", { type, id: uniqueId(`${section}-${name}`), name, autocomplete: "off" });
        return { name, input, field: field(label, input) };
      });
      const error = h("p", { class: "form-error", role: "alert" });
      const form = h("form", { class: "add-form", "aria-label": `Add to ${section}` }, h("div", { class: "form-grid" }, controls.map((c) => c.field)),
        h("button", { type: "submit", text: "Add" }), error);
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const values = Object.fromEntries(controls.map((c) => [c.name, c.input.value.trim()]).filter(([, v]) => v));
        try {
          await ctx.api.put(`/${section}`, { json: listWith(values) });
          ctx.toast(`Added to ${section}.`, "ok");
          form.reset();
          error.textContent = "";
        } catch (e) {
          error.textContent = e.message;
        }
        await loadLists().catch(ctx.fail);
      });
      return h("details", { class: "add" }, h("summary", { text: "Add an entry" }), form);
    }

    async function change(promise) {
      try {
        await promise;
        ctx.toast("Saved.", "ok");
      } catch (e) {
        ctx.fail(e);
      }
      await loadLists().catch(ctx.fail);
    }

    async function removeEntry(section, index) {
      if (await ctx.confirm("Delete entry", `Delete ${section}[${index}] from the config?`, { confirm: "Delete", danger: true })) {
        await change(ctx.api.delete(`/${section}?index=${index}`));
      }
    }

    async function removeCompat(name) {
      if (await ctx.confirm("Delete provider", `Delete the provider ${name} and its keys from the config?`, { confirm: "Delete", danger: true })) {
        await change(ctx.api.delete(`/${COMPAT}?name=${q(name)}`));
      }
    }

    loadSettings().catch(ctx.fail);
    ctx.every(10000, loadLists);
  },
};
