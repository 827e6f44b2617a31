// How numbers, money, times and secrets are shown.

const integer = new Intl.NumberFormat("en-US");
const compactNumber = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
const relativeTime = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

export const num = (n) => integer.format(n || 0);
export const compact = (n) => compactNumber.format(n || 0);

export function usd(value) {
  const v = value || 0;
  if (v === 0) return "$0";
  if (v >= 100) return `$${integer.format(Math.round(v))}`;
  if (v >= 1) return `$${v.toFixed(2)}`;
  const text = v.toFixed(v >= 0.01 ? 3 : 5).replace(/\.?0+$/, "");
  return text === "0" ? "<$0.00001" : `$${text}`;
}

/** 3725 → "1h 02m", 65 → "1m 05s", 9.4 → "9s". */
export function duration(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (hours) return `${hours}h ${String(minutes).padStart(2, "0")}m`;
  if (minutes) return `${minutes}m ${String(rest).padStart(2, "0")}s`;
  return `${rest}s`;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** A local date and time, "2026-11-05 14:03". */
export function dateTime(value) {
  if (!value) return "—";
  const d = value instanceof Date ? value : new Date(typeof value === "number" ? value * 1000 : value);
  if (Number.isNaN(d.getTime())) return String(value);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "in 3 days", "5 minutes ago"; further than six weeks away, the date. */
export function relative(value) {
  if (!value) return "";
  const ms = new Date(value).getTime() - Date.now();
  if (Number.isNaN(ms)) return "";
  if (Math.abs(ms) > 42 * 86400e3) return dateTime(value).slice(0, 10);
  const units = [["day", 86400e3], ["hour", 3600e3], ["minute", 60e3], ["second", 1e3]];
  for (const [unit, size] of units) {
    if (Math.abs(ms) >= size || unit === "second") return relativeTime.format(Math.round(ms / size), unit);
  }
  return "";
}

/** `sk-…abcd`: enough to recognise a key, never enough to use it (as the proxy redacts). */
export function maskSecret(secret) {
  if (!secret) return "";
  if (secret.includes("…")) return secret;
  if (secret.length <= 8) return "…";
  return `${secret.slice(0, 3)}…${secret.slice(-4)}`;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
