"""Reasoning levels and budgets: the one table every codec converts through, and the model suffix.

Claude speaks budgets (or `adaptive`), OpenAI speaks effort levels, Gemini 2.5 budgets and Gemini 3
levels. A model suffix such as `gpt-5(high)` or `gemini-2.5-pro(8192)` overrides the body's
setting, as it does in CLIProxyAPI.
"""

from __future__ import annotations

import re

from cliproxy.translate.ir import Reasoning

LEVELS = ("none", "minimal", "low", "medium", "high", "xhigh")

EFFORT_BUDGET: dict[str, int] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": 32768,
}

_SUFFIX = re.compile(r"^(.+)\(([^()]*)\)$")


def split_thinking_suffix(model: str) -> tuple[str, str | None]:
    """`gpt-5(high)` → (`gpt-5`, `high`); a model without a suffix → (model, None)."""
    if not model.endswith(")"):
        return model, None
    m = _SUFFIX.match(model)
    if m is None:
        return model, None
    return m.group(1), m.group(2).strip()


def reasoning_from_suffix(suffix: str) -> Reasoning | None:
    """A suffix as IR reasoning: a number is a budget (`-1` dynamic, `0` off), a word is a level."""
    value = suffix.strip().lower()
    if not value:
        return None
    if value.lstrip("-").isdigit():
        budget = int(value)
        if budget == 0:
            return Reasoning(effort="none", budget=0)
        if budget < 0:
            return Reasoning(budget=-1, adaptive=True)
        return Reasoning(budget=budget, effort=effort_for_budget(budget))
    if value in ("auto", "adaptive", "dynamic"):
        return Reasoning(budget=-1, adaptive=True)
    if value == "max":
        value = "xhigh"
    if value in EFFORT_BUDGET:
        return Reasoning(effort=value)
    return None


def effort_for_budget(budget: int) -> str:
    """The nearest effort level for a token budget."""
    if budget == 0:
        return "none"
    if budget < 0:
        return "medium"
    if budget <= 512:
        return "minimal"
    if budget <= 2048:
        return "low"
    if budget <= 12288:
        return "medium"
    return "high"


def budget_for(reasoning: Reasoning, *, default: int = 8192) -> int:
    """A positive budget for wires that need one (Claude `budget_tokens`)."""
    if reasoning.budget is not None and reasoning.budget > 0:
        return reasoning.budget
    if reasoning.effort:
        return EFFORT_BUDGET.get(reasoning.effort, default)
    return default


def effort_for(reasoning: Reasoning) -> str | None:
    """An effort level for wires that take one (OpenAI); None when nothing was asked."""
    if reasoning.effort:
        return reasoning.effort
    if reasoning.budget is not None:
        return effort_for_budget(reasoning.budget)
    if reasoning.adaptive:
        return "medium"
    return None


def is_off(reasoning: Reasoning | None) -> bool:
    return reasoning is None or reasoning.effort == "none" or reasoning.budget == 0
