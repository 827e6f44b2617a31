// Signing in as a user of this proxy: the email-and-password form, the single sign-on button, and
// the onboarding screen an invitation link opens (set a password, then you are signed in).
//
// The invitation token comes from the link's fragment (never sent to a server by the browser)
// and goes to the proxy only in a request body. The password fields are plain form fields
// handled in script: nothing is ever put into a URL.

import { account, ApiError, session } from "./api.js";
import { fill, h } from "./dom.js";

function card(...children) {
  return h("main", { id: "main", class: "login-card" },
    h("h1", null, h("span", { class: "brand-mark", "aria-hidden": "true", text: "◆" }), " cliproxy"), children);
}

/** The email sign-in (and the single sign-on button) inside `box`, when this proxy has users. */
export async function accountForms(box, message, onSignedIn) {
  let options;
  try {
    options = await account.get("/login-options");
  } catch {
    return; // users and teams are off on this proxy: the management key is the only way in
  }
  if (!options.password && !options.sso) return;
  const parts = [];
  if (options.password) {
    const email = h("input", { id: "account-email", type: "email", name: "email", autocomplete: "username", required: true, spellcheck: "false" });
    const password = h("input", { id: "account-password", type: "password", name: "password", autocomplete: "current-password", required: true });
    const error = h("p", { id: "account-error", class: "form-error", role: "alert", text: "" });
    const submit = h("button", { type: "submit", class: "primary", text: "Sign in with password" });
    const form = h("form", { class: "login-form account-form", novalidate: true },
      h("label", { for: "account-email", text: "Email" }), email,
      h("label", { for: "account-password", text: "Password" }), password, error, submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!email.value.trim() || !password.value) {
        error.textContent = "Type your email and password.";
        return;
      }
      submit.disabled = true;
      try {
        session.forget(); // a cookie session, never with a management key beside it
        const answer = await account.post("/login", { json: { email: email.value.trim(), password: password.value } });
        session.useCookie(answer.csrf);
        password.value = "";
        await onSignedIn();
      } catch (e) {
        error.textContent = e instanceof ApiError && e.status === 429
          ? "Too many failed sign-ins: wait a while and try again."
          : e.message || "Sign-in failed.";
      } finally {
        submit.disabled = false;
      }
    });
    parts.push(form);
  }
  if (options.sso) {
    const after = location.hash && location.hash !== "#" ? location.hash : "#/";
    parts.push(h("p", null, h("a", {
      class: "button sso-button",
      href: `${options.sso_path}?after=${encodeURIComponent(after)}`,
      text: "Sign in with single sign-on",
    })));
  }
  parts.push(h("p", { class: "muted small", text: "Administrators may sign in with the management key below." }));
  fill(box, parts);
  if (message) box.prepend(h("p", { class: "form-error", role: "alert", text: message }));
  const first = box.querySelector("input");
  if (first) first.focus();
}

/** The screen of an invitation link: who it is for, a password to choose, then signed in. */
export async function invitationScreen(root, token, onDone) {
  root.className = "login-screen";
  const status = h("p", { class: "muted", text: "Checking the invitation…" });
  fill(root, card(status));
  let invitation;
  try {
    invitation = await account.post("/invitations/lookup", { json: { token } });
  } catch (e) {
    fill(root, card(h("h2", { text: "This invitation cannot be used" }), h("p", { class: "form-error", role: "alert", text: e.message }),
      h("p", null, h("a", { href: "#/", text: "Go to the sign-in page" }))));
    return;
  }
  const min = invitation.min_password_length;
  const password = h("input", { id: "invite-password", type: "password", autocomplete: "new-password", minlength: String(min), required: true });
  const again = h("input", { id: "invite-password-again", type: "password", autocomplete: "new-password", required: true });
  const error = h("p", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary", text: "Set password and sign in" });
  const form = h("form", { class: "login-form", novalidate: true },
    h("label", { for: "invite-password", text: `Choose a password (at least ${min} characters)` }), password,
    h("label", { for: "invite-password-again", text: "The same password again" }), again, error, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (password.value.length < min) {
      error.textContent = `The password needs at least ${min} characters.`;
      return;
    }
    if (password.value !== again.value) {
      error.textContent = "The two passwords differ.";
      return;
    }
    submit.disabled = true;
    try {
      session.forget();
      const answer = await account.post("/invitations/accept", { json: { token, password: password.value } });
      session.useCookie(answer.csrf);
      await onDone();
    } catch (e) {
      error.textContent = e.message;
      submit.disabled = false;
    }
  });
  const team = invitation.team ? ` in team ${invitation.team}` : "";
  fill(root, card(h("h2", { text: "Welcome" }),
    h("p", { text: `You are invited as ${invitation.email} (${invitation.role}${team}).` }), form));
  password.focus();
}
