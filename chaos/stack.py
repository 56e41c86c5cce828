"""What the workers are given: the config file (providers at the simulator, watches,
destinations, routes) and the environment with every secret. And the routes as the
harness expects them to select (`receivers_for`), which the scoring holds deliveries to.

Routes:
- every `*.state_changed` → the webhook `hooks` (Standard Webhooks, signed);
- `*.state_changed` of severity critical → Slack `ops-slack` (here: Artistree orders
  turning Action Required, the only critical state the run sets);
- `rev.order.state_changed` → email `ops-mail` (plain SMTP to a local aiosmtpd).

Slack's main section and the mail's subject are a machine-readable line
(`chaos|{id}|{rkey}|{to}|{detected_at}|{type}`) so that each receipt names its event
without the webhook's copy.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.toml_out import toml_array, toml_table, toml_value

__all__ = ["CRITICAL", "MARK", "Endpoints", "Secrets", "receivers_for", "worker_env", "write_config"]

MARK = "chaos|{{ event.id }}|{{ event.resource.key }}|{{ to_state }}|{{ event.detected_at }}|{{ event.type }}"
CRITICAL = {"artistree": frozenset({"Action Required", "Failed", "Unsupported File"})}
"""The states whose state_changed is critical (docs/events.md), per provider, among those the run sets."""


def receivers_for(provider: str, to_state: str) -> tuple[str, ...]:
    """The receivers the routes send a state change of `provider` to `to_state` to."""
    out = ["webhook"]
    if to_state in CRITICAL.get(provider, frozenset()):
        out.append("slack")
    if provider == "rev":
        out.append("email")
    return tuple(out)


@dataclass(frozen=True)
class Secrets:
    """Everything secret the workers get, only through their environment. Never printed."""

    webhook_secret: str
    slack_webhook_url: str
    artistree_client_secret: str = "sim-secret"
    rev_user_key: str = "sim-user-key"
    sartiq_password: str = "sim-password"
    deepomatic_api_key: str = "sim-api-key"

    @classmethod
    def generate(cls, slack_webhook_url: str) -> Secrets:
        return cls("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(), slack_webhook_url)

    def values(self) -> list[str]:
        return [self.webhook_secret, self.slack_webhook_url, self.artistree_client_secret, self.rev_user_key,
                self.sartiq_password, self.deepomatic_api_key]


@dataclass(frozen=True)
class Endpoints:
    sim_base: str
    hook_url: str
    smtp_port: int
    api_port: int


def write_config(path: Path, *, redis_url: str, endpoints: Endpoints, ids: dict[str, list[str]],
                 interval: float) -> None:
    every = f"{interval:g}s"
    base = endpoints.sim_base
    providers: dict[str, dict[str, Any]] = {
        "artistree": {"base_url": f"{base}/artistree", "token_url": f"{base}/artistree/oauth2/token",
                      "client_id": "sim-client", "requests_per_second": 50},
        "rev": {"base_url": f"{base}/rev", "client_key": "sim-client-key", "requests_per_second": 50},
        "sartiq": {"base_url": f"{base}/sartiq", "username": "sim@example.com", "requests_per_second": 50},
        "deepomatic": {"base_url": f"{base}/deepomatic", "site": "chaos", "requests_per_second": 50},
    }
    watches: list[dict[str, Any]] = [
        {"provider": "artistree", "scan": {"project_id": "All Projects"}, "interval": every},
        {"provider": "rev", "ids": ids["rev"], "interval": every},
        {"provider": "sartiq", "kind": "upload_task", "ids": ids["sartiq"], "interval": every},
        {"provider": "deepomatic", "ids": ids["deepomatic"], "interval": every},
    ]
    destinations: dict[str, dict[str, Any]] = {
        "hooks": {"kind": "webhook", "url": endpoints.hook_url, "timeout": 10, "retry_schedule": [1, 2, 5, 10, 30]},
        "ops-slack": {"kind": "slack", "retry_schedule": [1, 2, 5, 10, 30], "templates": {"slack": MARK}},
        "ops-mail": {"kind": "email", "host": "127.0.0.1", "port": endpoints.smtp_port, "security": "plain",
                     "from": "statehook <statehook@chaos.example>", "to": ["ops@chaos.example"], "subject": MARK,
                     "timeout": 10, "retry_schedule": [1, 2, 5, 10, 30]},
    }
    routes: list[dict[str, Any]] = [
        {"name": "every state change", "match": {"type": ["*.state_changed"]}, "to": ["hooks"]},
        {"name": "critical to slack", "match": {"type": ["*.state_changed"], "severity": ["critical"]},
         "to": ["ops-slack"]},
        {"name": "rev by mail", "match": {"type": ["rev.order.state_changed"]}, "to": ["ops-mail"]},
    ]
    lines = [f"redis_url = {toml_value(redis_url)}", 'log_level = "info"', "",
             "[api]", 'host = "127.0.0.1"', f"port = {endpoints.api_port}", ""]
    for name, block in providers.items():
        lines += toml_table(f"providers.{name}", block)
    lines += toml_array("watches", watches)
    for name, block in destinations.items():
        lines += toml_table(f'destinations."{name}"', block)
    lines += toml_array("routes", routes)
    path.write_text("\n".join(lines))


def worker_env(config_path: Path, secrets_: Secrets) -> dict[str, str]:
    """The environment of every statehook process: the config file and the secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEHOOK_")}
    env.update({
        "STATEHOOK_CONFIG_FILE": str(config_path),
        "STATEHOOK_LOG_FORMAT": "text",
        "STATEHOOK_DESTINATIONS__HOOKS__SECRET": secrets_.webhook_secret,
        "STATEHOOK_DESTINATIONS__OPS_SLACK__WEBHOOK_URL": secrets_.slack_webhook_url,
        "STATEHOOK_PROVIDERS__ARTISTREE__CLIENT_SECRET": secrets_.artistree_client_secret,
        "STATEHOOK_PROVIDERS__REV__USER_KEY": secrets_.rev_user_key,
        "STATEHOOK_PROVIDERS__SARTIQ__PASSWORD": secrets_.sartiq_password,
        "STATEHOOK_PROVIDERS__DEEPOMATIC__API_KEY": secrets_.deepomatic_api_key,
        "PYTHONUNBUFFERED": "1",
    })
    return env
