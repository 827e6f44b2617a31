// Building the DOM without HTML strings: every text from the API goes in as text, never as markup.

const SVG_NS = "http://www.w3.org/2000/svg";
// Written as properties, not attributes (they reflect live state).
const PROPERTIES = new Set(["value", "checked", "indeterminate", "selectedIndex"]);

/**
 * h("button", {class: "primary", onclick: fn, "aria-label": "…"}, "text", child, [more])
 * h("svg:rect", {x: 1, y: 2}) creates SVG elements. `text` sets textContent; `on<event>` adds a
 * listener; false, null and undefined props are left out; true becomes an empty attribute.
 */
export function h(tag, props, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") el.textContent = String(value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (PROPERTIES.has(name)) el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace everything inside `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A labelled form field: <label for> + control (+ hint), as one block. */
export function field(label, control, hint) {
  const id = control.id || (control.id = uniqueId("f"));
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint`, text: hint }) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: id, text: label }), control, hintEl);
}

let counter = 0;
export function uniqueId(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** A status badge: kind is ok, warn, danger, info or muted. */
export function badge(text, kind = "muted") {
  return h("span", { class: `badge badge-${kind}`, text });
}

/** An empty state: a heading-sized line and an explanation. */
export function emptyState(title, detail, ...extra) {
  return h("div", { class: "empty" }, h("p", { class: "empty-title", text: title }), detail ? h("p", { text: detail }) : null, extra);
}

/** A table whose cells carry their column name, so narrow screens can show each row as a card. */
export function table(columns, rows, { caption, className = "" } = {}) {
  const head = h("thead", null, h("tr", null, columns.map((c) => h("th", { scope: "col", text: c }))));
  const body = h("tbody", null, rows.map((cells) => {
    const tr = h("tr", cells.attrs || null);
    cells.forEach((cell, i) => tr.append(h("td", { "data-label": columns[i] }, cell)));
    return tr;
  }));
  return h("div", { class: "table-wrap" }, h("table", { class: `data ${className}` }, caption ? h("caption", { text: caption }) : null, head, body));
}

/** A labelled meter bar (value / limit); without a limit it shows only the value. */
export function meter(label, value, limit, format) {
  const shown = limit ? `${format(value)} / ${format(limit)}` : `${format(value)} (no limit)`;
  const ratio = limit ? Math.min(1, value / limit) : 0;
  const level = !limit ? "none" : ratio >= 1 ? "full" : ratio >= 0.8 ? "high" : "ok";
  const bar = h("span", { class: `meter-fill meter-${level}` });
  bar.style.width = `${Math.round(ratio * 100)}%`;
  return h("div", { class: "meter", role: "group", "aria-label": `${label}: ${shown}` },
    h("div", { class: "meter-head" }, h("span", { text: label }), h("span", { class: "meter-value", text: shown })),
    h("div", { class: "meter-track", "aria-hidden": "true" }, bar));
}

/**
 * Re-render `container` with `render()` without losing the keyboard focus: an element inside it
 * that has `data-focus-key` gets the focus back on its re-rendered twin.
 */
export function keepFocus(container, render) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.focusKey : undefined;
  render();
  if (key) {
    const twin = container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (twin) twin.focus();
  }
}

/**
 * A button that shows it is busy while `action` runs and ignores presses meanwhile. It is marked
 * aria-disabled rather than disabled: a disabled button would drop the keyboard focus.
 */
export function actionButton(label, action, { kind = "", focusKey, title, disabled } = {}) {
  const button = h("button", { type: "button", class: kind, text: label, "data-focus-key": focusKey, title, disabled });
  let busy = false;
  button.addEventListener("click", async () => {
    if (busy) return;
    busy = true;
    button.setAttribute("aria-busy", "true");
    button.setAttribute("aria-disabled", "true");
    try {
      await action(button);
    } finally {
      busy = false;
      button.removeAttribute("aria-busy");
      button.removeAttribute("aria-disabled");
    }
  });
  return button;
}
