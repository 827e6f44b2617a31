"""Subscription and service-account credentials: the auth-dir, OAuth logins, token refresh."""
