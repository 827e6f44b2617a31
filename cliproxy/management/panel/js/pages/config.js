// Config: config.yaml as text. Saving sends it to the proxy, which validates it with the same
// loader as at startup and keeps the old file when it is wrong; the errors are listed here with
// the YAML path they concern, and clicking one puts the cursor near it.

import { emptyState, fill, h } from "../dom.js";
import { dateTime } from "../format.js";

const LINE_COLUMN = /at line (\d+), column (\d+)/;

/** The offset of the line that holds the last key of `path` (`claude-api-key[0].base-url`), best effort. */
function offsetOfPath(text, path) {
  const keys = path.split(".").map((part) => part.replace(/\[\d+\]/g, "")).filter(Boolean);
  const lines = text.split("\n");
  let from = 0;
  let offset = 0;
  let found = -1;
  for (const key of keys) {
    const pattern = new RegExp(`^\\s*(- )?["']?${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}["']?\\s*:`);
    const index = lines.findIndex((line, i) => i >= from && pattern.test(line));
    if (index < 0) break;
    found = index;
    from = index + 1;
  }
  if (found < 0) return -1;
  for (let i = 0; i < found; i += 1) offset += lines[i].length + 1;
  return offset;
}

function offsetOfLine(text, line, column) {
  const lines = text.split("\n");
  let offset = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i += 1) offset += lines[i].length + 1;
  return offset + Math.max(0, column - 1);
}

export default {
  id: "config",
  title: "Config",
  render(ctx) {
    let saved = "";
    const editor = h("textarea", { id: "config-editor", class: "editor mono", spellcheck: "false", autocapitalize: "off", autocomplete: "off", wrap: "off", readonly: ctx.readOnly, "aria-label": "config.yaml", "aria-describedby": "config-help" });
    const position = h("span", { class: "muted small", "aria-live": "off" });
    const state = h("span", { class: "small", role: "status" });
    const errors = h("div", { id: "config-errors", class: "config-errors", role: "alert" });
    const reload = h("div");
    const save = h("button", { type: "button", class: "primary", text: "Save", id: "config-save" });
    const revert = h("button", { type: "button", text: "Discard changes", id: "config-revert" });
    const tools = h("div", { class: "toolbar" }, ctx.readOnly ? null : [save, revert], state, h("span", { class: "spacer" }), position);
    ctx.el.append(
      h("p", { id: "config-help", class: "muted", text: ctx.readOnly
        ? "Read-only: secrets are redacted as the API returns them to viewer keys."
        : "The whole config.yaml. The management secret's hash is shown as a placeholder and kept when you save. A file with errors is never saved." }),
      reload, tools, errors, editor);

    function markDirty() {
      const dirty = editor.value !== saved;
      state.textContent = dirty ? "Unsaved changes" : "";
      save.disabled = !dirty;
      revert.disabled = !dirty;
    }

    function showPosition() {
      const before = editor.value.slice(0, editor.selectionStart);
      const line = before.split("\n").length;
      position.textContent = `Line ${line}, column ${before.length - before.lastIndexOf("\n")}`;
    }

    function jump(offset) {
      if (offset < 0) return;
      editor.focus();
      const end = editor.value.indexOf("\n", offset);
      editor.setSelectionRange(offset, end < 0 ? editor.value.length : end);
      const line = editor.value.slice(0, offset).split("\n").length;
      editor.scrollTop = Math.max(0, (line - 5) * parseFloat(getComputedStyle(editor).lineHeight || "18"));
      showPosition();
    }

    function showErrors(error) {
      const data = error.data || {};
      let items = Array.isArray(data.errors) && data.errors.length ? data.errors : [{ path: "", message: data.message || error.message }];
      if (data.error === "invalid_yaml") items = [{ path: "", message: `YAML syntax: ${data.message || error.message}` }];
      fill(errors, h("p", { class: "error-title", text: "Not saved: the proxy refused this config." }),
        h("ul", { class: "error-list" }, items.map((item) => {
          const where = LINE_COLUMN.exec(item.message);
          const offset = item.path ? offsetOfPath(editor.value, item.path) : where ? offsetOfLine(editor.value, Number(where[1]), Number(where[2])) : -1;
          const text = [item.path ? h("code", { class: "error-path", text: item.path }) : null, h("span", { class: "error-message", text: item.message })];
          return h("li", null, offset >= 0 ? h("button", { type: "button", class: "link", onclick: () => jump(offset), "aria-label": `Go to ${item.path || "the error"}` }, text) : text);
        })));
    }

    async function load() {
      const text = await ctx.api.get("/config.yaml");
      saved = text;
      editor.value = text;
      fill(errors);
      markDirty();
    }

    async function checkReload() {
      const status = await ctx.api.get("/reload-status");
      fill(reload, status.ok ? [] : h("div", { class: "banner banner-error" },
        h("strong", { text: "The file on disk has a problem; the proxy keeps running on the last good config. " }),
        h("span", { text: `${status.message} (${dateTime(status.time)})` })));
    }

    editor.addEventListener("input", markDirty);
    for (const event of ["keyup", "click", "select"]) editor.addEventListener(event, showPosition);
    editor.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key === "s") {
        event.preventDefault();
        if (!ctx.readOnly) save.click();
      }
    });
    save.addEventListener("click", async () => {
      save.disabled = true;
      state.textContent = "Saving…";
      try {
        await ctx.api.put("/config.yaml", { text: editor.value });
        saved = editor.value;
        fill(errors);
        markDirty();
        state.textContent = "Saved; the proxy runs on it now.";
        ctx.toast("config.yaml saved.", "ok");
        checkReload().catch(ctx.fail);
      } catch (error) {
        if (error.kind === "http" && (error.status === 400 || error.status === 422)) showErrors(error);
        else ctx.fail(error);
        markDirty();
      }
    });
    revert.addEventListener("click", () => load().catch(ctx.fail));
    const warnUnsaved = (event) => {
      if (editor.value !== saved) event.preventDefault();
    };
    window.addEventListener("beforeunload", warnUnsaved);
    ctx.onStop(() => window.removeEventListener("beforeunload", warnUnsaved));

    load().catch((error) => {
      if (error.status === 404) fill(ctx.el, emptyState("The proxy has no config file.", error.message));
      else ctx.fail(error);
    });
    ctx.every(10000, checkReload);
  },
};
