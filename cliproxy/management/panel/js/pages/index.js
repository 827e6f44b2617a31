// The panel's pages, in navigation order. A page is one module: add it here to add it to the panel.

import config from "./config.js";
import credentials from "./credentials.js";
import keys from "./keys.js";
import logs from "./logs.js";
import overview from "./overview.js";
import providers from "./providers.js";

export const PAGES = [overview, credentials, keys, providers, config, logs];
