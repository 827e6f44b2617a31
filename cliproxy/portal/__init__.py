"""The self-serve surface `/v0/account`: sign-in, a member's own keys and spend, invitations, SSO, CLI login."""
