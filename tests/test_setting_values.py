"""Every duration in the config takes one type (`90`, `"90s"`, `"10m"`), bounded; retry
schedules refuse negative delays; a webhook secret is `whsec_` and strict base64."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from config import ConfigError, load_config
from notifiers.webhook import whsec_problem

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

BASE = """
[providers.rev]
base_url = "http://127.0.0.1:9/rev"
{rev}

[providers.sartiq]
base_url = "http://127.0.0.1:9/sartiq"
username = "ops"
{sartiq}

[providers.deepomatic]
base_url = "http://127.0.0.1:9/deepomatic"
site = "acme"
{deepomatic}

[destinations.hook]
kind = "webhook"
{hook}

[destinations.chat]
kind = "slack"
{chat}

[destinations.mail]
kind = "email"
host = "127.0.0.1"
from = "statehook@example.test"
to = ["ops@example.test"]
{mail}

[destinations.tty]
kind = "console"
{tty}

[[watches]]
provider = "rev"
ids = ["1"]
"""
SECTIONS = ("rev", "sartiq", "deepomatic", "hook", "chat", "mail", "tty")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEHOOK_PROVIDERS__REV__CLIENT_KEY", "ck")
    monkeypatch.setenv("STATEHOOK_PROVIDERS__REV__USER_KEY", "uk")
    monkeypatch.setenv("STATEHOOK_PROVIDERS__SARTIQ__PASSWORD", "pw")
    monkeypatch.setenv("STATEHOOK_PROVIDERS__DEEPOMATIC__API_KEY", "key")
    monkeypatch.setenv("STATEHOOK_DESTINATIONS__HOOK__URL", "https://hooks.example.test/in")
    monkeypatch.setenv("STATEHOOK_DESTINATIONS__CHAT__WEBHOOK_URL", "https://hooks.slack.com/services/T/B/x")
    monkeypatch.delenv("STATEHOOK_DESTINATIONS__HOOK__SECRET", raising=False)


def config_text(secret: str = WHSEC, **extra: str) -> str:
    lines = {name: extra.get(name, "") for name in SECTIONS}
    lines["hook"] = f'secret = "{secret}"\n' + lines["hook"]
    return BASE.format(**lines)


def problems(tmp_config: Callable[[str], Path], text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_config(text))
    return caught.value.problems


# ---- one duration type everywhere --------------------------------------------------------

DURATION_FIELDS = [
    ("rev", "terminal_tail", lambda c: c.providers["rev"].terminal_tail),
    ("rev", "reopen_tail", lambda c: c.providers["rev"].reopen_tail),
    ("sartiq", "token_lifetime", lambda c: c.providers["sartiq"].token_lifetime),
    ("deepomatic", "timeout", lambda c: c.providers["deepomatic"].timeout),
    ("hook", "timeout", lambda c: c.destinations["hook"].timeout),
    ("chat", "timeout", lambda c: c.destinations["chat"].timeout),
    ("chat", "min_interval", lambda c: c.destinations["chat"].min_interval),
    ("chat", "max_wait", lambda c: c.destinations["chat"].max_wait),
    ("mail", "timeout", lambda c: c.destinations["mail"].timeout),
]


@pytest.mark.parametrize(("section", "key", "read"), DURATION_FIELDS, ids=[f"{s}.{k}" for s, k, _ in DURATION_FIELDS])
def test_every_duration_takes_the_same_forms(env: None, tmp_config: Callable[[str], Path], section: str, key: str,
                                             read: Callable[..., float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEHOOK_WORKER__DELIVERY_TIMEOUT", "2h")  # room for a destination's longest send
    for written, seconds in (('"10m"', 600.0), ("90", 90.0), ('"1h30m"', 5400.0), ('"2.5s"', 2.5)):
        config = load_config(tmp_config(config_text(**{section: f"{key} = {written}"})))
        assert read(config) == seconds, (key, written)


@pytest.mark.parametrize(("section", "key", "read"), DURATION_FIELDS, ids=[f"{s}.{k}" for s, k, _ in DURATION_FIELDS])
def test_every_duration_refuses_nonsense_naming_the_field_and_line(
        env: None, tmp_config: Callable[[str], Path], section: str, key: str, read: Callable[..., float]) -> None:
    for written in ('"soon"', "-5", '"40d"', "true", "1e400"):
        text = config_text(**{section: f"{key} = {written}"})
        line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith(f"{key} = {written}"))
        found = problems(tmp_config, text)
        assert len(found) == 1, found
        assert f"{key}" in found[0] and f":{line}:" in found[0], found


def test_a_value_that_is_not_a_duration_is_never_repeated(
        env: None, tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The message said `not a duration: '<the value>'`: a secret set in the wrong variable was printed."""
    expected = "not a duration: a number of seconds, or amounts of ms, s, m, h, d (e.g. 30s, 5m, 1h30m)"
    pasted = "hunter2-S3CRET-token"
    (in_file,) = problems(tmp_config, config_text(mail=f'timeout = "{pasted}"'))
    assert in_file.endswith(f"destinations.mail.timeout: {expected}") and pasted not in in_file, in_file
    monkeypatch.setenv("STATEHOOK_WORKER__DELIVERY_TIMEOUT", '{"In Progress": "1h"}')
    (in_env,) = problems(tmp_config, config_text())
    assert in_env == f"STATEHOOK_WORKER__DELIVERY_TIMEOUT: worker.delivery_timeout: {expected}", in_env


def test_a_rev_reopen_tail_in_minutes_sets_the_terminal_tail(env: None, tmp_config: Callable[[str], Path]) -> None:
    config = load_config(tmp_config(config_text(rev='reopen_tail = "30m"')))
    assert config.providers["rev"].terminal_tail == 1800.0


# ---- retry schedules ---------------------------------------------------------------------

@pytest.mark.parametrize("section", ["hook", "chat", "mail", "tty"])
def test_a_negative_retry_delay_is_refused(env: None, tmp_config: Callable[[str], Path], section: str) -> None:
    found = problems(tmp_config, config_text(**{section: "retry_schedule = [-2, 5, 10]"}))
    assert len(found) == 1 and "retry_schedule.0" in found[0] and "too short" in found[0], found


def test_a_retry_schedule_takes_durations_and_zero(env: None, tmp_config: Callable[[str], Path]) -> None:
    config = load_config(tmp_config(config_text(hook='retry_schedule = [0, "30s", "5m", 3600]')))
    assert config.destinations["hook"].retry_schedule == [0.0, 30.0, 300.0, 3600.0]


def test_a_retry_schedule_is_bounded(env: None, tmp_config: Callable[[str], Path]) -> None:
    found = problems(tmp_config, config_text(hook=f"retry_schedule = [{', '.join(['1'] * 101)}]"))
    assert len(found) == 1 and "retry_schedule" in found[0], found
    found = problems(tmp_config, config_text(hook='retry_schedule = ["31d"]'))
    assert len(found) == 1 and "too long" in found[0], found


def test_a_retry_schedule_ends_before_its_delivery_job_expires(env: None, tmp_config: Callable[[str], Path]) -> None:
    """A retry job lives three days and ARQ forgets its try count after a day's wait: a
    schedule past either would lose the delivery (neither sent nor dead-lettered)."""
    found = problems(tmp_config, config_text(hook='retry_schedule = ["1d", "1d"]'))  # 2 days and its 20% jitter
    assert len(found) == 1 and "retry_schedule" in found[0] and "expires" in found[0], found
    found = problems(tmp_config, config_text(hook='retry_schedule = ["25h"]'))
    assert len(found) == 1 and "too long" in found[0], found
    config = load_config(tmp_config(config_text(hook='retry_schedule = ["1d", "10h"]\njitter = 0.1')))
    assert config.destinations["hook"].retry_schedule == [86400.0, 36000.0]


def test_a_send_that_could_outlast_its_retry_job_is_refused(env: None, tmp_config: Callable[[str], Path]) -> None:
    found = problems(tmp_config, config_text(mail="timeout = 25"))
    assert len(found) == 1 and "destinations.mail.timeout" in found[0] and "delivery_timeout" in found[0], found
    found = problems(tmp_config, config_text(chat="max_wait = 20"))  # Slack waits for its slot inside the send
    assert len(found) == 1 and "destinations.chat.timeout" in found[0], found
    load_config(tmp_config(config_text()))  # every kind's defaults fit the default job timeout


def test_a_provider_url_and_rate_that_could_not_work_are_refused(
    env: None, tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An address that is no http(s) URL failed every poll; a rate of 1e-300 a request never
    polled anything: both passed check."""
    for written in ("not a url", "", "ftp://secret-token-9f8e7d"):
        monkeypatch.setenv("STATEHOOK_PROVIDERS__REV__BASE_URL", written)
        found = problems(tmp_config, config_text())
        assert len(found) == 1 and "rev.base_url" in found[0] and "http" in found[0], found
        assert "secret-token-9f8e7d" not in found[0]
    monkeypatch.setenv("STATEHOOK_PROVIDERS__REV__BASE_URL", "https://api.rev.example:8443/api/v1")
    load_config(tmp_config(config_text()))
    found = problems(tmp_config, config_text(rev="requests_per_second = 1e-300"))
    assert len(found) == 1 and "requests_per_second" in found[0], found


# ---- webhook signing secrets -------------------------------------------------------------

def test_whsec_problem_is_strict() -> None:
    assert whsec_problem(WHSEC) is None
    assert whsec_problem("whsec_" + base64.b64encode(bytes(64)).decode()) is None
    assert whsec_problem("whsec_" + base64.b64encode(bytes(24)).decode().rstrip("=")) is None  # unpadded
    assert whsec_problem("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == "must start with `whsec_`"
    assert whsec_problem("whsec_MfKQ9r8GKYqrTwjU!!D8ILPZIo2LaLaSw") == "is not `whsec_` followed by base64"
    assert whsec_problem("whsec_MfKQ9r8GKYqr TwjUPD8ILPZIo2LaLaSw") == "is not `whsec_` followed by base64"
    assert whsec_problem("whsec_abc") == "must decode to 24 to 64 bytes (it has 2)"
    assert whsec_problem("whsec_" + base64.b64encode(bytes(65)).decode()) == "must decode to 24 to 64 bytes (it has 65)"


@pytest.mark.parametrize("secret", [
    "whsec_!!!!not-base64-at-all-but-long-enough!!!!",
    "whsec_abc",
    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    f"{WHSEC} whsec_***",
])
def test_a_bad_signing_secret_stops_loading_without_showing_it(
        env: None, tmp_config: Callable[[str], Path], secret: str) -> None:
    found = problems(tmp_config, config_text(secret=secret))
    assert len(found) == 1 and "destinations.hook.secret" in found[0], found
    for part in secret.split():
        assert part.removeprefix("whsec_") not in found[0], found
