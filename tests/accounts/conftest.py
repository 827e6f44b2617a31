from tests.fakes.fixtures import start_proxy, upstream

__all__ = ["start_proxy", "upstream"]
