"""Upstream executors: one module per upstream kind, and the HTTP clients they share (`clients.Sessions`).

An API-key provider's module holds its executor and its registry entry (`PROVIDER`, an
`api_keys.ApiKeySection`); `cliproxy.credentials.registry` lists them.
"""
