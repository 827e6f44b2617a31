"""Prometheus metrics: counters fed by usage records and a few hooks, gauges read at scrape time.

Nothing here sits on the byte path. Per-request figures come from the usage records
(`UsageStore.subscribe`), per-attempt outcomes travel in the same record, OAuth refreshes and
config reloads report through callbacks, and cooldowns, credential counts, in-flight requests and
WebSocket sessions are read when `/metrics` is scraped.
"""
