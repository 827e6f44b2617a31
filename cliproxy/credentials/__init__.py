"""Credentials of the auth-dir: the provider registry, the files and their one writer, logins, refresh.

`registry` lists every provider kind; `files` parses a credential file; `store` loads the
auth-dir and is the only code that writes it; `refresh`, `minted` and `service` keep tokens
valid for a running server; `login` and `oauth` run the interactive flows; `providers/` holds
one module per credential-file type.
"""
