// Logs: the tail of the proxy's log file, and the request logs written for failed requests.

import { q } from "../api.js";
import { actionButton, emptyState, fill, h, table } from "../dom.js";
import { bytes, dateTime } from "../format.js";

const TAIL_MS = 3000;
const FILES_MS = 10000;
const KEEP_LINES = 2000;

export default {
  id: "logs",
  title: "Logs",
  render(ctx) {
    let lines = [];
    let after = 0;
    let paused = false;
    let off = false;
    const filter = h("input", { type: "search", id: "log-filter", placeholder: "Filter lines", "aria-label": "Filter log lines" });
    const pause = h("button", { type: "button", text: "Pause", "aria-pressed": "false" });
    const output = h("pre", { id: "log-tail", class: "log mono", tabindex: "0", "aria-label": "Log lines" });
    const tail = h("section", { class: "card", "aria-labelledby": "tail-title" });
    const files = h("section", { class: "card", "aria-labelledby": "error-logs-title" });
    ctx.el.append(tail, files);

    function drawTail() {
      if (off) {
        fill(tail, h("h2", { id: "tail-title", text: "Log" }), emptyState("Logging to file is off.",
          "The proxy logs to its console only. Turn on logging-to-file to read the log here.",
          ctx.readOnly ? null : actionButton("Turn on logging to file", async () => {
            try {
              await ctx.api.put("/logging-to-file", { json: { value: true } });
              off = false;
              drawTail();
              await poll();
            } catch (e) {
              ctx.fail(e);
            }
          }, { kind: "primary" })));
        return;
      }
      if (!tail.contains(output)) {
        const clear = ctx.readOnly ? null : actionButton("Clear log files", async () => {
          if (!(await ctx.confirm("Clear logs", "Delete the rotated log files and empty the current one?", { confirm: "Clear", danger: true }))) return;
          try {
            await ctx.api.delete("/logs");
            lines = [];
            show();
          } catch (e) {
            ctx.fail(e);
          }
        }, { kind: "danger" });
        fill(tail, h("h2", { id: "tail-title", text: "Log" }), h("div", { class: "toolbar" }, filter, pause, clear), output);
      }
      show();
    }

    function show() {
      const needle = filter.value.trim().toLowerCase();
      const shown = needle ? lines.filter((l) => l.toLowerCase().includes(needle)) : lines;
      const stick = output.scrollTop + output.clientHeight >= output.scrollHeight - 20;
      output.textContent = shown.length ? shown.join("\n") : needle ? "No line matches the filter." : "No log lines yet.";
      if (stick) output.scrollTop = output.scrollHeight;
    }

    async function poll() {
      if (paused) return;
      let answer;
      try {
        answer = await ctx.api.get(`/logs?after=${after}&limit=${after ? 1000 : 500}`);
      } catch (error) {
        if (error.kind === "http" && /logging to file disabled/.test(error.message)) {
          if (!off) {
            off = true;
            drawTail();
          }
          return;
        }
        throw error;
      }
      if (off || !tail.contains(output)) {
        off = false;
        drawTail();
      }
      if (answer.lines.length) {
        lines = lines.concat(answer.lines).slice(-KEEP_LINES);
        after = answer["latest-timestamp"];
        show();
      }
    }

    async function loadFiles() {
      const answer = await ctx.api.get("/request-error-logs");
      fill(files, h("h2", { id: "error-logs-title", text: "Failed requests" }),
        h("p", { class: "muted", text: "One file per failed request, with what the client sent and what the upstream answered." }),
        answer.files.length ? table(["File", "Size", "Written", ""], answer.files.map((f) => [
          h("span", { class: "mono small", text: f.name }), bytes(f.size), dateTime(f.modified),
          actionButton("View", () => view(f.name), { kind: "small" }),
        ])) : emptyState("No failed requests logged.", "Each failed request gets a file here (error-logs-max-files keeps the newest)."));
    }

    async function view(name) {
      try {
        const text = await ctx.api.get(`/request-error-logs/${q(name)}`);
        await ctx.openDialog({ title: name, className: "wide", body: h("pre", { class: "log mono", tabindex: "0", text }) });
      } catch (e) {
        ctx.fail(e);
      }
    }

    filter.addEventListener("input", show);
    pause.addEventListener("click", () => {
      paused = !paused;
      pause.textContent = paused ? "Resume" : "Pause";
      pause.setAttribute("aria-pressed", String(paused));
    });
    ctx.every(TAIL_MS, poll);
    ctx.every(FILES_MS, loadFiles);
  },
};
