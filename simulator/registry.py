"""Which stand-ins the simulator can run, and how to build one with some orders in it.

Adding a provider's stand-in is one line in `SIM_PROVIDERS`. A stand-in that has an
`add_many(n)` method gets `orders_per_provider` orders when the simulator is built.
"""

from __future__ import annotations

import inspect
from typing import Protocol, runtime_checkable

from simulator.artistree import ArtistreeSim
from simulator.core import SimProvider, Simulator
from simulator.deepomatic import DeepomaticSim
from simulator.rev import RevSim
from simulator.sartiq import SartiqSim

__all__ = ["SIM_PROVIDERS", "Seedable", "build_simulator", "check_names"]

SIM_PROVIDERS: dict[str, type[SimProvider]] = {
    "artistree": ArtistreeSim,
    "deepomatic": DeepomaticSim,
    "rev": RevSim,
    "sartiq": SartiqSim,
}


@runtime_checkable
class Seedable(Protocol):
    """A stand-in that can be filled with `n` fresh orders (or tasks) at once."""

    def add_many(self, n: int, /) -> object: ...


def check_names(names: list[str]) -> None:
    """ValueError naming the unknown ones and the known ones, if any is not a stand-in."""
    unknown = [name for name in names if name not in SIM_PROVIDERS]
    if unknown or not names:
        what = f"unknown provider(s) {', '.join(map(repr, unknown))}" if unknown else "name at least one provider"
        raise ValueError(f"{what} (known: {', '.join(SIM_PROVIDERS)})")


def _built(cls: type[SimProvider], seed: int) -> SimProvider:
    """A stand-in, seeded when it takes a seed (its orders' ids and contents follow it)."""
    if "seed" in inspect.signature(cls).parameters:
        return cls(seed=seed)  # type: ignore[call-arg]
    return cls()


def build_simulator(names: list[str] | None = None, *, orders_per_provider: int = 0, seed: int = 7) -> Simulator:
    """A simulator (not started) with the named stand-ins, or all of them."""
    chosen = list(SIM_PROVIDERS) if names is None else list(names)
    check_names(chosen)
    providers = [_built(SIM_PROVIDERS[name], seed) for name in chosen]
    if orders_per_provider > 0:
        for provider in providers:
            if isinstance(provider, Seedable):
                provider.add_many(orders_per_provider)
    return Simulator(providers, seed=seed)
