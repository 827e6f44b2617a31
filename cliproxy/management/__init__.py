"""The management API `/v0/management` (CLIProxyAPI's, so its web panel and dashboards work)."""
