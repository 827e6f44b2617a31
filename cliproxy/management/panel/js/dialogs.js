// Modal dialogs (native <dialog>: focus stays inside, Escape closes) and toasts.

import { h, uniqueId } from "./dom.js";

/**
 * Open a modal. `body` is a node or a list of nodes; `actions` are buttons
 * ({label, kind: "primary"|"danger"|"", onClick(close) → may return false to stay open}).
 * An onClick that throws keeps the dialog open with the error's message under the body, so a
 * refused save or a missing field is said once here, not by every form.
 * Resolves with the label of the button that closed it, or "" for Escape.
 */
export function openDialog({ title, body, actions = [{ label: "Close" }], className = "" }) {
  const titleId = uniqueId("dialog-title");
  const dialog = h("dialog", { class: `dialog ${className}`, "aria-labelledby": titleId });
  const error = h("p", { class: "form-error", role: "alert" });
  return new Promise((resolve) => {
    let result = "";
    const close = (label) => {
      result = label;
      dialog.close();
    };
    const buttons = actions.map((action) => h("button", {
      type: "button",
      class: action.kind || "",
      text: action.label,
      onclick: async () => {
        error.textContent = "";
        try {
          if (action.onClick && (await action.onClick(close)) === false) return;
        } catch (e) {
          error.textContent = e.message || String(e);
          return;
        }
        close(action.label);
      },
    }));
    dialog.append(
      h("h2", { id: titleId, text: title }),
      h("div", { class: "dialog-body" }, body, error),
      h("div", { class: "dialog-actions" }, buttons),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Yes or no: resolves true only when the confirming button was pressed. */
export async function confirmDialog(title, message, { confirm = "Confirm", danger = false } = {}) {
  const answer = await openDialog({
    title,
    body: h("p", { text: message }),
    actions: [{ label: "Cancel" }, { label: confirm, kind: danger ? "danger" : "primary" }],
  });
  return answer === confirm;
}

/** Copy `text`; the Clipboard API needs a secure context (localhost counts), else the old way. */
export async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (!input) return false;
    input.select();
    return document.execCommand("copy");
  }
}

/** A secret shown exactly once, with a copy button. */
export function secretDialog(title, secret, note) {
  const input = h("input", { type: "text", readonly: true, class: "secret-value mono", value: secret, "aria-label": "New key", spellcheck: "false" });
  const copied = h("span", { class: "copy-status", role: "status" });
  const copy = h("button", {
    type: "button",
    class: "primary",
    text: "Copy",
    onclick: async () => {
      copied.textContent = (await copyText(secret, input)) ? "Copied." : "Select the key and copy it by hand.";
    },
  });
  input.addEventListener("focus", () => input.select());
  return openDialog({
    title,
    className: "secret-dialog",
    body: [
      h("p", { class: "warning-text", text: note || "This is the only time the key is shown. Copy it now: the proxy keeps only its hash." }),
      h("div", { class: "secret-row" }, input, copy),
      copied,
    ],
    actions: [{ label: "Done" }],
  });
}

/** A short message at the bottom of the screen; errors stay longer. */
export function toast(message, kind = "info") {
  const region = document.getElementById("toasts");
  if (!region) return;
  const item = h("div", { class: `toast toast-${kind}` }, h("span", { text: message }), h("button", {
    type: "button",
    class: "ghost small",
    "aria-label": "Dismiss",
    text: "×",
    onclick: () => item.remove(),
  }));
  region.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 10000 : 4000);
}
