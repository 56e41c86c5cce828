"""How statehook is pointed at the running simulator: per stand-in, its `[providers.X]`
settings, the credentials it accepts (statehook reads those from the environment) and the
ids it was seeded with. `statehook demo` and `statehook simulate` both write their config
from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from config.toml_out import toml_array, toml_table
from simulator.core import Simulator

__all__ = ["SETUPS", "ProviderSetup", "env_line", "env_name", "provider_setups", "providers_toml"]


@dataclass(frozen=True, slots=True)
class ProviderSetup:
    name: str
    settings: dict[str, Any]
    """the `[providers.name]` block, secrets left out"""
    secrets: dict[str, str]
    """settings field -> the value the stand-in accepts"""
    ids: list[str]
    """what the stand-in holds now, in insertion order"""

    def block(self, *, with_secrets: bool = False) -> dict[str, Any]:
        return {**self.settings, **self.secrets} if with_secrets else dict(self.settings)

    def watch(self, interval: str) -> dict[str, Any]:
        return {"provider": self.name, "ids": list(self.ids), "interval": interval}

    def env_lines(self) -> list[str]:
        return [env_line(("providers", self.name, key), value) for key, value in self.secrets.items()]


def env_name(path: tuple[str, ...]) -> str:
    """The variable statehook reads a setting from: `STATEHOOK_PROVIDERS__REV__USER_KEY`."""
    return "STATEHOOK_" + "__".join(part.upper().replace("-", "_") for part in path)


def env_line(path: tuple[str, ...], value: str) -> str:
    return f"{env_name(path)}={value}"


def _artistree(sim: Simulator) -> ProviderSetup:
    stand_in, url = sim["artistree"], sim.url("artistree")
    settings = {"base_url": url, "token_url": url + "/oauth2/token", "client_id": stand_in.client_id}
    return ProviderSetup("artistree", settings, {"client_secret": stand_in.client_secret}, list(stand_in.order_ids))


def _rev(sim: Simulator) -> ProviderSetup:
    stand_in = sim["rev"]
    secrets = {"client_key": stand_in.client_key, "user_key": stand_in.user_key}
    return ProviderSetup("rev", {"base_url": sim.url("rev")}, secrets, list(stand_in.orders))


def _sartiq(sim: Simulator) -> ProviderSetup:
    stand_in = sim["sartiq"]
    settings = {"base_url": sim.url("sartiq"), "username": stand_in.username}
    return ProviderSetup("sartiq", settings, {"password": stand_in.password}, list(stand_in.tasks))


def _deepomatic(sim: Simulator) -> ProviderSetup:
    stand_in = sim["deepomatic"]
    settings = {"base_url": sim.url("deepomatic"), "site": "demo"}
    return ProviderSetup("deepomatic", settings, {"api_key": stand_in.api_key}, list(stand_in.work_orders))


SETUPS: dict[str, Callable[[Simulator], ProviderSetup]] = {
    "artistree": _artistree,
    "deepomatic": _deepomatic,
    "rev": _rev,
    "sartiq": _sartiq,
}


def provider_setups(sim: Simulator) -> list[ProviderSetup]:
    """One per stand-in of the started simulator, in its order."""
    return [SETUPS[name](sim) for name in sim.providers]


def providers_toml(
    setups: list[ProviderSetup], watches: list[dict[str, Any]], *, with_secrets: bool = False
) -> list[str]:
    """`[providers.X]` tables and the `[[watches]]`, as TOML lines."""
    lines = [line for s in setups for line in toml_table(f"providers.{s.name}", s.block(with_secrets=with_secrets))]
    return lines + toml_array("watches", watches)
