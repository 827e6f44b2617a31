"""Client-key policy: scopes and limits (`limits`), their counters (`state`, `ledger`), and accounting."""

from cliproxy.policy.limits import KeyPolicy, PolicyRefusal, model_allowed

__all__ = ["KeyPolicy", "PolicyRefusal", "model_allowed"]
