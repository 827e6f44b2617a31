"""Auth-file providers, one module per credential-file `type`.

Each module holds everything about its provider: the endpoints of its flows (a settings class
whose fields the environment can override, so tests and self-hosted gateways can point the
complete flows elsewhere), its logins, how its tokens stay valid, its credential file and its
executor, and the registry entry that names them (`PROVIDER`, listed in
`cliproxy.credentials.registry`).
"""
