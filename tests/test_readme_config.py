"""The configuration README.md shows, and statehook.example.toml, pass `statehook check` with
their secrets in the environment, as the README says to set them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from worker.cli import app

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {
    "STATEHOOK_PROVIDERS__ARTISTREE__CLIENT_SECRET": "cs-placeholder",
    "STATEHOOK_PROVIDERS__REV__CLIENT_KEY": "ck-placeholder",
    "STATEHOOK_PROVIDERS__REV__USER_KEY": "uk-placeholder",
    "STATEHOOK_DESTINATIONS__AUTOMATION__SECRET": "whsec_" + "A" * 32,
    "STATEHOOK_DESTINATIONS__AUTOMATION__URL": "https://automation.example.com/hooks/statehook",
}


def readme_config() -> str:
    (block,) = re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return block


def test_the_readme_config_passes_check_with_its_secrets_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "statehook.toml"
    path.write_text(readme_config().replace("…", "cid"))
    result = CliRunner().invoke(app, ["check", "--config", str(path), "--no-redis"])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("ok")
    assert not [line for line in result.output.splitlines() if line.startswith("warning:")], result.output


def test_the_example_config_passes_check_with_its_secrets_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["check", "--config", str(ROOT / "statehook.example.toml"), "--no-redis"])
    assert result.exit_code == 0, result.output
    assert not [line for line in result.output.splitlines() if line.startswith("warning:")], result.output
