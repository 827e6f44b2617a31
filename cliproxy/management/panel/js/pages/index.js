// The panel's pages, in navigation order. A page is one module: add it here to add it to the panel.
// `audience` says who sees it (default "manage": the management key or an admin user; "accounts":
// the same, when the proxy has a users store; "member": a signed-in user); `hidden` pages are
// reached by links only (`cliproxy login` opens them).

import cliLogin from "./cli-login.js";
import config from "./config.js";
import credentials from "./credentials.js";
import device from "./device.js";
import invitations from "./invitations.js";
import keys from "./keys.js";
import logs from "./logs.js";
import myKeys from "./my-keys.js";
import myTeam from "./my-team.js";
import myUsage from "./my-usage.js";
import overview from "./overview.js";
import providers from "./providers.js";
import teams from "./teams.js";
import users from "./users.js";

export const PAGES = [overview, credentials, keys, providers, config, logs, users, teams, invitations, myKeys, myUsage, myTeam, cliLogin, device];
