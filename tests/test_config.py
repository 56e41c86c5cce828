"""`statehook check`: a bad config names the field; no secret is ever printed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from worker.cli import app

SECRET = "super-secret-client-secret-123"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

GOOD = """
[providers.artistree]
base_url = "http://127.0.0.1:9/artistree"
client_id = "cid"

[[watches]]
provider = "artistree"
scan = { project_id = "All Projects" }
interval = "60s"

[destinations.automation]
kind = "webhook"
url = "https://automation.example.com/hooks/statehook?token=abc"

[destinations.console]
kind = "console"

[[routes]]
match = { type = ["*.state_changed"], severity = ["critical", "warning"] }
to = ["automation", "console"]
"""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEHOOK_PROVIDERS__ARTISTREE__CLIENT_SECRET", SECRET)
    monkeypatch.setenv("STATEHOOK_DESTINATIONS__AUTOMATION__SECRET", WHSEC)


def run_check(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", "--config", str(path)])
    return result.exit_code, result.output


def test_a_good_config_resolves_with_secrets_masked(env: None, tmp_config: Callable[[str], Path]) -> None:
    code, out = run_check(tmp_config(GOOD))
    assert code == 0, out
    assert "artistree" in out and "automation" in out
    assert SECRET not in out and WHSEC not in out and "token=abc" not in out
    assert "https://automation.example.com/********" in out


def test_unknown_destination_in_a_route_is_named(env: None, tmp_config: Callable[[str], Path]) -> None:
    code, out = run_check(tmp_config(GOOD.replace('to = ["automation", "console"]', 'to = ["pager"]')))
    assert code == 2
    assert "routes.0.to.0: unknown destination 'pager'" in out
    assert "statehook.toml:" in out


def test_missing_secret_is_named_with_its_variable(tmp_config: Callable[[str], Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEHOOK_DESTINATIONS__AUTOMATION__SECRET", WHSEC)
    code, out = run_check(tmp_config(GOOD))
    assert code == 2
    assert "providers.artistree.client_secret: missing secret" in out
    assert "STATEHOOK_PROVIDERS__ARTISTREE__CLIENT_SECRET" in out


def test_bad_url_is_named_and_not_echoed(env: None, tmp_config: Callable[[str], Path]) -> None:
    bad = GOOD.replace("https://automation.example.com/hooks/statehook?token=abc", "ftp:/nowhere-secret-path")
    code, out = run_check(tmp_config(bad))
    assert code == 2
    assert "destinations.automation.url" in out and "http:// or https://" in out
    assert "nowhere-secret-path" not in out and SECRET not in out


def test_every_problem_is_reported_at_once(env: None, tmp_config: Callable[[str], Path]) -> None:
    bad = GOOD.replace('interval = "60s"', 'interval = "soon"').replace('kind = "console"', 'kind = "pigeon"')
    code, out = run_check(tmp_config(bad))
    assert code == 2
    assert "watches.0.interval" in out


def test_bad_secret_format_is_named_without_the_value(tmp_config: Callable[[str], Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEHOOK_PROVIDERS__ARTISTREE__CLIENT_SECRET", SECRET)
    monkeypatch.setenv("STATEHOOK_DESTINATIONS__AUTOMATION__SECRET", "not-a-whsec-value-xyz")
    code, out = run_check(tmp_config(GOOD))
    assert code == 2
    assert "destinations.automation.secret" in out
    assert "not-a-whsec-value-xyz" not in out


def test_a_template_error_is_reported_by_check(env: None, tmp_config: Callable[[str], Path]) -> None:
    bad = GOOD.replace('to = ["automation", "console"]', 'to = ["automation", "console"]\ntemplate = "{{ event.nope }"')
    code, out = run_check(tmp_config(bad))
    assert code == 2
    assert "routes.0.template" in out


def test_uvloop_without_its_package_is_named(env: None, tmp_config: Callable[[str], Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import config.settings

    real = config.settings.importlib.util.find_spec
    monkeypatch.setattr(config.settings.importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvloop" else real(name, *a))
    code, out = run_check(tmp_config('[worker]\nevent_loop = "uvloop"\n' + GOOD))
    assert code == 2
    assert "worker.event_loop" in out and "statehook[uvloop]" in out
