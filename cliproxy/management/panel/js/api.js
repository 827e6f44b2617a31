// The API clients: `api` for the management API, `account` for a signed-in user's own surface.
//
// Two ways to be signed in. With the management key, the key lives in this tab's sessionStorage
// only: closing the tab forgets it, and no other tab, cookie or URL ever carries it. With an
// email and password (or single sign-on), the proxy keeps the session in an HttpOnly cookie that
// no script can read; every change then carries the session's CSRF token, which lives in this
// page's memory only.

const BASE = "/v0/management";
const ACCOUNT_BASE = "/v0/account";
const STORAGE_KEY = "cliproxy.management-key";
let csrfToken = "";

export const session = {
  key: () => sessionStorage.getItem(STORAGE_KEY) || "",
  save: (key) => sessionStorage.setItem(STORAGE_KEY, key),
  forget: () => {
    sessionStorage.removeItem(STORAGE_KEY);
    csrfToken = "";
  },
  /** Signed in with a cookie session: remember its CSRF token for the changes to come. */
  useCookie: (csrf) => {
    csrfToken = csrf || "";
  },
};

/**
 * kind: "auth" (401: wrong or missing key), "forbidden" (403: banned, remote access off),
 * "readonly" (403: admin role required), "off" (404 with no body: the management API is off),
 * "down" (no answer: the proxy is not reachable), "http" (any other error answer).
 */
export class ApiError extends Error {
  constructor(kind, status, message, data) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.data = data;
  }
}

function messageOf(data) {
  if (data && typeof data === "object") {
    const parts = [data.error, data.message].filter((p) => typeof p === "string" && p);
    return parts.join(": ");
  }
  return typeof data === "string" ? data.trim().slice(0, 300) : "";
}

function errorFor(status, data) {
  const message = messageOf(data);
  if (status === 401) return new ApiError("auth", status, message || "invalid management key", data);
  if (status === 403 && /admin role required/.test(message)) return new ApiError("readonly", status, message, data);
  if (status === 403) return new ApiError("forbidden", status, message || "forbidden", data);
  if (status === 404 && !message) return new ApiError("off", status, "the management API is off", data);
  return new ApiError("http", status, message || `HTTP ${status}`, data);
}

/** One call: `body` is JSON (`json`), text (`text`) or a FormData (`form`). Resolves to the parsed answer. */
export function request(method, path, options) {
  return call(BASE, method, path, options);
}

async function call(base, method, path, { json, text, form } = {}) {
  const key = base === BASE ? session.key() : ""; // the management key goes to the management API only
  const headers = key ? { Authorization: `Bearer ${key}` } : {};
  if (!key && csrfToken && method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (text !== undefined) {
    headers["Content-Type"] = "application/yaml";
    body = text;
  } else if (form !== undefined) {
    body = form;
  }
  let response;
  try {
    // The cookie goes only where no key does: a key and a cookie never travel together.
    const credentials = key ? "omit" : "same-origin";
    response = await fetch(base + path, { method, headers, body, cache: "no-store", credentials, redirect: "error" });
  } catch {
    throw new ApiError("down", 0, "cannot reach the proxy");
  }
  const type = response.headers.get("Content-Type") || "";
  let data;
  try {
    data = type.includes("json") ? await response.json() : await response.text();
  } catch {
    data = null;
  }
  if (!response.ok) throw errorFor(response.status, data);
  return data;
}

export const api = {
  get: (path) => request("GET", path),
  post: (path, options) => request("POST", path, options),
  put: (path, options) => request("PUT", path, options),
  patch: (path, options) => request("PATCH", path, options),
  delete: (path, options) => request("DELETE", path, options),
};

export const account = {
  get: (path) => call(ACCOUNT_BASE, "GET", path),
  post: (path, options) => call(ACCOUNT_BASE, "POST", path, options),
  put: (path, options) => call(ACCOUNT_BASE, "PUT", path, options),
  delete: (path, options) => call(ACCOUNT_BASE, "DELETE", path, options),
};

export const q = encodeURIComponent;
