"""Cost per request from litellm's bundled price data, offline.

litellm ships `model_prices_and_context_window_backup.json` inside its package; that file is what
`LITELLM_LOCAL_MODEL_COST_MAP=True` makes litellm load instead of fetching the map from GitHub. We
read it directly (≈40 ms, in a worker thread at startup) and keep only a small dict of per-token
prices: importing litellm itself would cost over a second and a lot of memory for the same data.
If the file ever moves, we fall back to importing litellm with the env flag set, still offline.

A model without a price is *unknown* (`None`), never $0: budgets must not silently stop counting.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BUNDLED_FILE = "model_prices_and_context_window_backup.json"
# When a bare model name is offered by several providers, the first listed here wins.
PROVIDER_PREFERENCE = ("openai", "anthropic", "gemini", "vertex_ai-language-models", "vertex_ai-anthropic_models")
LOOKUP_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token."""

    input: float
    output: float
    cache_read: float | None = None
    cache_creation: float | None = None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _rank(provider: str) -> int:
    try:
        return PROVIDER_PREFERENCE.index(provider)
    except ValueError:
        return len(PROVIDER_PREFERENCE)


def build_table(raw: dict[str, Any]) -> dict[str, Price]:
    """litellm's map → `{lowercase model name: Price}`, also under the name without `provider/`."""
    table: dict[str, Price] = {}
    rank: dict[str, tuple[int, int]] = {}  # (is derived from a prefixed name, provider rank)
    for name, entry in raw.items():
        if not isinstance(entry, dict) or name == "sample_spec":
            continue
        inp, out = _number(entry.get("input_cost_per_token")), _number(entry.get("output_cost_per_token"))
        if inp is None or out is None:
            continue
        price = Price(
            inp,
            out,
            _number(entry.get("cache_read_input_token_cost")),
            _number(entry.get("cache_creation_input_token_cost")),
        )
        provider = str(entry.get("litellm_provider", ""))
        key = name.strip().lower()
        names = [(key, 0)]
        if "/" in key:
            names.append((key.rsplit("/", 1)[1], 1))
        for alias, derived in names:
            score = (derived, _rank(provider))
            if alias not in table or score < rank[alias]:
                table[alias] = price
                rank[alias] = score
    return table


def bundled_path() -> Path | None:
    """The price file inside the installed litellm package, found without importing litellm."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    return None


def load_raw_prices() -> dict[str, Any]:
    """The raw litellm price map (blocking: call it in a worker thread)."""
    path = bundled_path()
    if path is not None:
        with path.open("rb") as fh:
            data: dict[str, Any] = json.load(fh)
        return data
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # never fetch over the network
    import litellm

    return dict(litellm.model_cost)


class PriceTable:
    """Model name → `Price`, with the name variants clients and upstreams actually send."""

    __slots__ = ("_cache", "_table")

    def __init__(self, table: dict[str, Price]) -> None:
        self._table = table
        self._cache: dict[str, Price | None] = {}

    @classmethod
    def load(cls) -> PriceTable:
        """Blocking load of litellm's bundled data; an unreadable file gives an empty table (all unknown)."""
        try:
            return cls(build_table(load_raw_prices()))
        except Exception as exc:  # never fatal: prices only matter for keys with budgets
            log.error("cannot load litellm's price data (%s): every model's price is unknown", type(exc).__name__)
            return cls({})

    def __len__(self) -> int:
        return len(self._table)

    def price(self, model: str) -> Price | None:
        """The price of `model`, or None when litellm does not know it."""
        if not model:
            return None
        try:
            return self._cache[model]
        except KeyError:
            pass
        found = self._find(model)
        if len(self._cache) >= LOOKUP_CACHE_SIZE:
            self._cache.clear()
        self._cache[model] = found
        return found

    def _find(self, model: str) -> Price | None:
        name = model.strip().lower()
        if name.endswith(")") and "(" in name:  # thinking suffix: `gemini-2.5-pro(8192)`
            name = name[: name.index("(")]
        name = name.removeprefix("models/")
        table = self._table
        for candidate in (name, name.rsplit("/", 1)[-1]):
            price = table.get(candidate)
            if price is not None:
                return price
        return None

    def cost(
        self,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        cache_creation_tokens: int = 0,
        input_includes_cached: bool = True,
    ) -> float | None:
        """USD for one request, or None when the model's price is unknown (and tokens were used).

        OpenAI and Gemini count cached tokens inside the input total; Anthropic reports them apart
        (`input_includes_cached=False`).
        """
        if not (input_tokens or output_tokens or cached_tokens or cache_creation_tokens):
            return 0.0
        price = self.price(model)
        if price is None:
            return None
        fresh = max(0, input_tokens - cached_tokens) if input_includes_cached else input_tokens
        cache_read = price.cache_read if price.cache_read is not None else price.input
        cache_write = price.cache_creation if price.cache_creation is not None else price.input
        return (
            fresh * price.input
            + cached_tokens * cache_read
            + cache_creation_tokens * cache_write
            + output_tokens * price.output
        )


class Prices:
    """The price table of a running server: loaded once in a worker thread after startup.

    Requests never wait for it unless they need a price before the load has finished (a budgeted
    key asking for a model whose price must be known).
    """

    __slots__ = ("_loading", "table")

    def __init__(self, table: PriceTable | None = None) -> None:
        self.table = table
        self._loading: asyncio.Future[PriceTable] | None = None

    def start_loading(self) -> asyncio.Future[PriceTable]:
        """Read litellm's price data in a worker thread (startup; never on the request path)."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(asyncio.to_thread(PriceTable.load))
            self._loading.add_done_callback(self._loaded)
        return self._loading

    def _loaded(self, future: asyncio.Future[PriceTable]) -> None:
        if not future.cancelled() and future.exception() is None:
            self.table = future.result()
            log.debug("price table ready: %d models", len(self.table))

    async def get(self) -> PriceTable:
        """The price table; waits for the startup load when it has not finished yet."""
        if self.table is not None:
            return self.table
        return await asyncio.shield(self.start_loading())
