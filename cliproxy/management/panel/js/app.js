// The panel's shell: sign-in, the navigation, the page router and the polling every page uses.
//
// A page is one module in ./pages/ exporting {id, title, render(ctx)}; listing it in
// ./pages/index.js puts it in the navigation. render() builds the page into ctx.el and may call
// ctx.every(ms, fn) to refresh it while it is shown: polls stop when the user leaves the page
// and pause while the tab is hidden.

import { accountForms, invitationScreen } from "./account.js";
import { account, api, ApiError, session } from "./api.js";
import { confirmDialog, openDialog, secretDialog, toast } from "./dialogs.js";
import { fill, h } from "./dom.js";
import { PAGES } from "./pages/index.js";

const THEME_KEY = "cliproxy.theme"; // a display preference, not a secret
const THEMES = ["auto", "light", "dark"];
const root = document.getElementById("app");

let who = null; // GET /whoami: role, version, login flows (null: a member without management access)
let me = null; // GET /v0/account/me: the signed-in user (null: signed in with the management key)
let current = null; // the shown page's {stop()}
let banner = null;

// ------------------------------------------------------------------ theme

// "auto" follows the system's scheme, as it changes: the stylesheet then needs one dark palette only.
const SYSTEM_DARK = matchMedia("(prefers-color-scheme: dark)");

function applyTheme(theme) {
  const dark = theme === "dark" || (theme === "auto" && SYSTEM_DARK.matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}

SYSTEM_DARK.addEventListener("change", () => applyTheme(localStorage.getItem(THEME_KEY) || "auto"));

function themeButton() {
  const label = () => `Theme: ${localStorage.getItem(THEME_KEY) || "auto"}`;
  const button = h("button", { type: "button", class: "ghost", text: label(), "aria-label": "Switch colour theme" });
  button.addEventListener("click", () => {
    const now = localStorage.getItem(THEME_KEY) || "auto";
    const next = THEMES[(THEMES.indexOf(now) + 1) % THEMES.length];
    localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
    button.textContent = label();
  });
  return button;
}

// ------------------------------------------------------------------ sign-in

const EXPLAIN = {
  auth: "That key was not accepted. Check it and try again (after 5 wrong keys this address is locked out for 30 minutes).",
  expired: "The proxy no longer accepts the key this tab had. Sign in again.",
  off: "The management API is off on this proxy: set remote-management.secret-key in its config (or the MANAGEMENT_PASSWORD environment variable) and reload.",
  down: "Cannot reach the proxy. Is it running, and is this the right address?",
};

function explain(error) {
  if (error.kind === "forbidden" && /remote management disabled/.test(error.message)) {
    return "Remote management is disabled on this proxy: open the panel on the proxy's own machine, or set remote-management.allow-remote: true.";
  }
  return EXPLAIN[error.kind] || error.message;
}

function showLogin(message) {
  current?.stop();
  current = null;
  who = null;
  me = null;
  root.className = "login-screen";
  const input = h("input", { id: "management-key", type: "password", name: "management-key", autocomplete: "current-password", required: true, spellcheck: "false" });
  const error = h("p", { id: "login-error", class: "form-error", role: "alert", text: message || "" });
  const submit = h("button", { type: "submit", class: "primary", text: "Sign in" });
  const form = h("form", { class: "login-form", novalidate: true },
    h("label", { for: "management-key", text: "Management key" }), input,
    h("p", { class: "hint", text: "Kept in this tab only (session storage) and sent to this proxy's management API; closing the tab forgets it." }),
    error, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      error.textContent = "Type the management key (remote-management.secret-key, or a viewer key).";
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Signing in…";
    session.save(key);
    await enter();
    submit.disabled = false;
    submit.textContent = "Sign in";
  });
  const members = h("div", { class: "member-sign-in" });
  fill(root, h("main", { id: "main", class: "login-card" },
    h("h1", null, h("span", { class: "brand-mark", "aria-hidden": "true", text: "◆" }), " cliproxy"),
    h("p", { class: "muted", text: "Control panel" }), members, form, themeButton()));
  input.focus();
  // Users of this proxy sign in with their email (or single sign-on) when it has any.
  accountForms(members, message, async () => enterAccount()).catch(() => {});
}

/** Signed in with a session cookie: who am I, and may I manage the proxy too? */
async function enterAccount() {
  try {
    me = await account.get("/me");
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    me = null;
    return false;
  }
  session.useCookie(me.csrf);
  who = null;
  if (me.may_manage) {
    try {
      who = await api.get("/whoami");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
    }
  }
  showShell();
  return true;
}

async function enter() {
  try {
    who = await api.get("/whoami");
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.kind === "auth") session.forget();
    showLogin(explain(error));
    return;
  }
  showShell();
}

async function signOut() {
  if (me && !session.key()) await account.post("/logout").catch(() => {});
  session.forget();
  showLogin("");
}

// ------------------------------------------------------------------ the shell

/**
 * Who may see a page: "manage" pages (the default) need management access, "accounts" pages also
 * the users store, "member" pages a signed-in user.
 */
function allowed(page) {
  const audience = page.audience || "manage";
  if (audience === "member") return Boolean(me);
  if (!who) return false;
  return audience === "manage" || Boolean(who.accounts);
}

function pages() {
  return PAGES.filter(allowed);
}

function pageFromHash() {
  const id = location.hash.replace(/^#\/?/, "").split("?")[0];
  const shown = pages();
  return shown.find((p) => p.id === id) || shown.find((p) => !p.hidden);
}

function roleLabel() {
  if (me) return `${me.user.email} · ${me.user.role}`;
  return who.role !== "admin" ? "Viewer · read-only" : "Admin";
}

function showShell() {
  root.className = "app";
  const readOnly = !who || who.role !== "admin";
  const nav = h("nav", { class: "sidebar", "aria-label": "Pages" }, h("ul", null, pages().filter((p) => !p.hidden).map((page) =>
    h("li", null, h("a", { href: `#/${page.id}`, "data-page": page.id, text: page.title })))));
  banner = h("div", { id: "banner", class: "banner", role: "status", hidden: true });
  fill(root,
    h("header", { class: "topbar" },
      h("a", { class: "brand", href: `#/${pageFromHash().id}` }, h("span", { class: "brand-mark", "aria-hidden": "true", text: "◆" }), " cliproxy ",
        h("span", { class: "version", text: who && who.version ? `v${who.version}` : "" })),
      h("div", { class: "topbar-tools" },
        h("span", { class: `role role-${me ? "member" : who.role}`, text: roleLabel() }),
        themeButton(),
        h("button", { type: "button", class: "ghost", text: "Sign out", onclick: signOut }))),
    nav,
    h("main", { id: "main", tabindex: "-1" }, banner, h("div", { id: "page" })));
  window.onhashchange = () => route(true);
  route(false);
}

function setBanner(message, kind = "error") {
  if (!banner) return;
  banner.hidden = !message;
  banner.className = `banner banner-${kind}`;
  banner.textContent = message || "";
}

/** What an error means for the whole panel; returns true when it was handled here. */
function handleError(error) {
  if (!(error instanceof ApiError)) {
    console.error(error);
    toast(String(error.message || error), "error");
    return true;
  }
  if (error.kind === "auth") {
    session.forget();
    showLogin(EXPLAIN.expired);
    return true;
  }
  if (error.kind === "down") {
    setBanner("Cannot reach the proxy. Retrying every few seconds…");
    return true;
  }
  if (error.kind === "off") {
    setBanner(EXPLAIN.off);
    return true;
  }
  if (error.kind === "forbidden") {
    setBanner(explain(error));
    return true;
  }
  return false;
}

function route(focus) {
  current?.stop();
  const page = pageFromHash();
  for (const link of root.querySelectorAll("nav a")) {
    if (link.dataset.page === page.id) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${page.title} · cliproxy`;
  const el = h("div", { class: `page page-${page.id}` });
  const title = h("h1", { id: "page-title", tabindex: "-1", text: page.title });
  fill(document.getElementById("page"), title, el);
  setBanner(null);
  const polls = [];
  const cleanups = [];
  let stopped = false;
  const ctx = {
    el,
    who,
    me,
    api,
    account,
    readOnly: !who || who.role !== "admin",
    toast,
    confirm: confirmDialog,
    openDialog,
    secretDialog,
    get stopped() {
      return stopped;
    },
    /** Run `fn` now and every `ms` while the page is shown (paused while the tab is hidden). */
    every(ms, fn) {
      const poll = { timer: 0 };
      polls.push(poll);
      const run = async () => {
        if (stopped) return;
        if (!document.hidden) {
          try {
            await fn();
            setBanner(null);
          } catch (error) {
            if (!handleError(error)) setBanner(error.message);
          }
        }
        if (!stopped) poll.timer = setTimeout(run, ms);
      };
      run();
    },
    /** Run a local update (no API call) every `ms` while the page is shown: countdowns. */
    tick(ms, fn) {
      const poll = { timer: 0 };
      polls.push(poll);
      const run = () => {
        if (stopped) return;
        if (!document.hidden) fn();
        poll.timer = setTimeout(run, ms);
      };
      run();
    },
    /** Run `fn` when the user leaves the page (remove window listeners and the like). */
    onStop(fn) {
      cleanups.push(fn);
    },
    /** Report a failed action: a toast with the server's message (or the panel-wide handling). */
    fail(error) {
      if (!handleError(error)) toast(error.message, "error");
    },
  };
  current = {
    stop() {
      stopped = true;
      for (const poll of polls) clearTimeout(poll.timer);
      for (const fn of cleanups) fn();
    },
  };
  try {
    page.render(ctx);
  } catch (error) {
    ctx.fail(error);
  }
  if (focus) title.focus();
}

// ------------------------------------------------------------------ start

async function start() {
  const hash = location.hash.replace(/^#\/?/, "");
  if (hash.startsWith("invite/")) {
    invitationScreen(root, hash.slice("invite/".length), async () => {
      location.hash = "#/";
      await enterAccount();
    });
    return;
  }
  if (hash.startsWith("signin")) {
    const error = new URLSearchParams(hash.split("?")[1] || "").get("error");
    history.replaceState(null, "", location.pathname);
    showLogin(error ? `Single sign-on did not work: ${error}` : "");
    return;
  }
  if (session.key()) return enter();
  if (!(await enterAccount())) showLogin("");
}

applyTheme(localStorage.getItem(THEME_KEY) || "auto");
start();
