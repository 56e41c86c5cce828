"""The edges of configuration: each bad input, through `statehook check` and `statehook run`
as processes, is exit 2 and exactly one `error:` line naming the field and where it was set
(the file line or the environment variable), no traceback and no secret; what `check`
shows masks header values and URL passwords; a variable that sets nothing is a warning."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config import load_config
from config.settings import sentry_dsn_problem
from store.redis_url import redis_url_problem
from tests.conftest import free_port
from worker import redact
from worker.cli import app

STATEHOOK = str(Path(sys.executable).with_name("statehook"))

CLIENT_SECRET = "cs-S3CRET-a1"
HEADER_TOKEN = "hdr-S3CRET-b2"
URL_PASSWORD = "urlpw-S3CRET-c3"
REDIS_PASSWORD = "redispw-S3CRET-d4"
SLACK_URL = "https://hooks.slack.com/services/T0/B0/slack-S3CRET-e5"
SENTRY_KEY = "0123456789abcdef0123456789abcdef"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRETS = (CLIENT_SECRET, HEADER_TOKEN, URL_PASSWORD, REDIS_PASSWORD, "slack-S3CRET-e5", SENTRY_KEY,
           WHSEC.removeprefix("whsec_"))

GOOD = f"""\
[providers.artistree]
base_url = "http://ops:{URL_PASSWORD}@127.0.0.1:9/artistree"
client_id = "cid"

[[watches]]
provider = "artistree"
ids = ["ord-1"]

[destinations.automation]
kind = "webhook"
url = "https://automation.example.test/in"
headers = {{ Authorization = "Bearer {HEADER_TOKEN}", X-Team = "ops" }}

[[routes]]
name = "everything"
to = ["automation"]
"""

BASE_ENV = {
    "STATEHOOK_PROVIDERS__ARTISTREE__CLIENT_SECRET": CLIENT_SECRET,
    "STATEHOOK_DESTINATIONS__AUTOMATION__SECRET": WHSEC,
    "STATEHOOK_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0",
}

REDIS_FORMS = ("redis://[:password@]host:port/db, rediss://…, unix:///path or "
               "redis+sentinel://host:port,…/service/db")
DSN_FORM = "it looks like https://PUBLIC_KEY@o0.ingest.sentry.io/PROJECT_ID"


@dataclass(frozen=True)
class Bad:
    name: str
    error: str
    """the one `error:` line, after `error: `; {file} is the config file's path"""
    toml: str | bytes = GOOD
    env: dict[str, str] = field(default_factory=dict)
    target: str = "file"
    """what --config names: "file", "dir" (a directory), "env" (none: STATEHOOK_CONFIG_FILE names it)"""
    unreadable: bool = False


def bad_utf8() -> bytes:
    return GOOD.encode().replace(b'"ops"', b'"caf\xe9"')


def utf8_error() -> str:
    raw = bad_utf8()
    at = raw.index(b"\xe9")
    line = len(raw[:at].splitlines())
    return f"{{file}}:{line}: not valid UTF-8 (byte {at + 1}): a TOML file is UTF-8 text"


def line_of(text: str, needle: str, nth: int = 1) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), start=1) if line.strip() == needle]
    return lines[nth - 1]


TWO_SPELLINGS = GOOD + '\n[destinations.ops_mail]\nkind = "console"\n\n[destinations.ops-mail]\nkind = "console"\n'
TWO_NAMES = GOOD + '\n[[routes]]\nname = "everything"\nto = ["automation"]\n'
SECOND_NAME = line_of(TWO_NAMES, 'name = "everything"', 2)

TYPO_LINE = 'intervall = "5m"'
TYPO_WATCH = GOOD.replace('ids = ["ord-1"]', f'ids = ["ord-1"]\n{TYPO_LINE}')
TWICE_IDS = 'ids = ["ord-2", "ord-1"]'
TWICE = GOOD.replace('ids = ["ord-1"]', f'ids = ["ord-1"]\n\n[[watches]]\nprovider = "artistree"\n{TWICE_IDS}\n'
                     'interval = "2s"')

BAD = [
    Bad("invalid utf-8", utf8_error(), toml=bad_utf8()),
    Bad("a directory", "{file}: a directory, not a TOML file", target="dir"),
    Bad("an unreadable file named by STATEHOOK_CONFIG_FILE",
        "STATEHOOK_CONFIG_FILE: {file}: cannot read it (permission denied)", target="env", unreadable=True),
    Bad("a missing file named by STATEHOOK_CONFIG_FILE", "STATEHOOK_CONFIG_FILE: {file}: no such file",
        target="env", toml=""),
    Bad("redis port not a number", "STATEHOOK_REDIS_URL: redis_url: the port is not a number from 1 to 65535",
        env={"STATEHOOK_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:notaport/0"}),
    Bad("redis url of http", f"STATEHOOK_REDIS_URL: redis_url: not a Redis URL (its scheme is http://): use "
        f"{REDIS_FORMS}", env={"STATEHOOK_REDIS_URL": f"http://:{REDIS_PASSWORD}@127.0.0.1:6379/0"}),
    Bad("redis url without a scheme", f"STATEHOOK_REDIS_URL: redis_url: not a Redis URL (no scheme://): use "
        f"{REDIS_FORMS}", env={"STATEHOOK_REDIS_URL": REDIS_PASSWORD}),
    Bad("redis url empty", f"STATEHOOK_REDIS_URL: redis_url: empty: a Redis URL is {REDIS_FORMS}",
        env={"STATEHOOK_REDIS_URL": ""}),
    Bad("redis database not a number", "STATEHOOK_REDIS_URL: redis_url: the database (the URL's path) is a number, "
        "e.g. /0", env={"STATEHOOK_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/zero"}),
    Bad("redis option unknown", "STATEHOOK_REDIS_URL: redis_url: the URL's option 'timeout_s' is not an option "
        "of a Redis connection", env={"STATEHOOK_REDIS_URL": "redis://127.0.0.1:1/0?timeout_s=3"}),
    Bad("redis option with a bad value", "STATEHOOK_REDIS_URL: redis_url: the URL's option socket_timeout has a "
        "value Redis cannot use", env={"STATEHOOK_REDIS_URL": "redis://127.0.0.1:1/0?socket_timeout=soon"}),
    Bad("sentinel port not a number", "STATEHOOK_REDIS_URL: redis_url: not a sentinel address: host:port expected, "
        "got 's1:x'", env={"STATEHOOK_REDIS_URL": f"redis+sentinel://:{REDIS_PASSWORD}@s1:x/mymaster/0"}),
    Bad("sentry dsn without host", f"STATEHOOK_SENTRY_DSN: sentry_dsn: not a Sentry DSN (it names no host): "
        f"{DSN_FORM}", env={"STATEHOOK_SENTRY_DSN": f"https://{SENTRY_KEY}@"}),
    Bad("sentry dsn not a url", "STATEHOOK_SENTRY_DSN: sentry_dsn: not a Sentry DSN (its scheme is not https:// "
        f"or http://): {DSN_FORM}", env={"STATEHOOK_SENTRY_DSN": SENTRY_KEY}),
    Bad("sentry dsn without project", "STATEHOOK_SENTRY_DSN: sentry_dsn: not a Sentry DSN (its last path segment, "
        f"the project id, is not a number): {DSN_FORM}", env={"STATEHOOK_SENTRY_DSN": f"https://{SENTRY_KEY}@h/p"}),
    Bad("a secret for a destination the file lacks",
        "STATEHOOK_DESTINATIONS__OPS_SLACK__WEBHOOK_URL: destinations.ops-slack: set in the environment, but "
        "statehook.toml has no [destinations.ops-slack]: a destination's kind and settings belong in the file "
        "(its secrets come from the environment)",
        env={"STATEHOOK_DESTINATIONS__OPS_SLACK__WEBHOOK_URL": SLACK_URL}),
    Bad("an environment value that is wrong is blamed on its variable",
        "STATEHOOK_DESTINATIONS__AUTOMATION__URL: destinations.automation.url: must be an http:// or https:// URL",
        env={"STATEHOOK_DESTINATIONS__AUTOMATION__URL": f"ftp://automation.example.test/{HEADER_TOKEN}"}),
    Bad("a misspelt nested variable", "STATEHOOK_WORKER__POLL_BATCH: worker.poll_batch: unknown field "
        "(did you mean poll_batch_size?)", env={"STATEHOOK_WORKER__POLL_BATCH": "10"}),
    Bad("a variable's JSON", "STATEHOOK_WATCHES: watches: not valid JSON (a list or a table set in the "
        "environment is written as JSON)", env={"STATEHOOK_WATCHES": "[{provider"}),
    Bad("a secret-like value in a closed choice", "STATEHOOK_LOG_LEVEL: log_level: Input should be 'debug', "
        "'info', 'warning' or 'error'", env={"STATEHOOK_LOG_LEVEL": HEADER_TOKEN}),
    Bad("two tables differing by - and _",
        f"{{file}}:{line_of(TWO_SPELLINGS, '[destinations.ops-mail]')}: destinations.ops-mail: the same name as "
        f"[destinations.ops_mail] at line {line_of(TWO_SPELLINGS, '[destinations.ops_mail]')} (names compare "
        "without case and with - equal to _): rename one", toml=TWO_SPELLINGS,
        env={"STATEHOOK_DESTINATIONS__OPS_MAIL__KIND": "console"}),
    Bad("a misspelt watch field", f"{{file}}:{line_of(TYPO_WATCH, TYPO_LINE)}: watches.0.intervall: unknown field "
        "(did you mean interval?)", toml=TYPO_WATCH),
    Bad("one id in two watches", f"{{file}}:{line_of(TWICE, TWICE_IDS)}: watches.1.ids: 'ord-1' is "
        f"watched by watches.0 (line {line_of(TWICE, '[[watches]]')}) too: a resource is watched once", toml=TWICE),
    Bad("a duration below its bound", "STATEHOOK_WORKER__TAKEOVER_AFTER: worker.takeover_after: at least 3s",
        env={"STATEHOOK_WORKER__TAKEOVER_AFTER": "1s"}),
    Bad("two routes of one name",
        f"{{file}}:{SECOND_NAME}: routes.1.name: routes.0 "
        f"(line {line_of(TWO_NAMES, '[[routes]]')}) has this name too: a route's name is its key (throttles, "
        "digests), one route each", toml=TWO_NAMES),
]


def _drop_file_read_override() -> None:
    """As root, a mode-000 file is readable: without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
    (dropped from the bounding set, so the exec'd process has neither) it is not."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl")


def statehook(args: list[str], env: dict[str, str], cwd: Path, *, unreadable: bool = False
              ) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH")} | {"HOME": str(cwd), **env}
    return subprocess.Popen([STATEHOOK, *args], env=full_env, cwd=cwd, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            preexec_fn=_drop_file_read_override if unreadable and os.geteuid() == 0 else None)


def prepare(case: Bad, tmp_path: Path) -> tuple[list[str], dict[str, str], str]:
    """The `--config` arguments, the environment and the file's path for a case."""
    path = tmp_path / "statehook.toml"
    if case.target == "dir":
        path = tmp_path / "conf.d"
        path.mkdir()
    elif case.toml != "":
        path.write_bytes(case.toml if isinstance(case.toml, bytes) else case.toml.encode())
    if case.unreadable:
        path.chmod(0)
    env = {**BASE_ENV, **case.env}
    if case.target == "env":
        env["STATEHOOK_CONFIG_FILE"] = str(path)
        return [], env, str(path)
    return ["--config", str(path)], env, str(path)


@pytest.mark.parametrize("case", BAD, ids=[c.name for c in BAD])
def test_a_bad_input_is_one_line_for_check_and_for_run(case: Bad, tmp_path: Path) -> None:
    config_args, env, path = prepare(case, tmp_path)
    procs = {command: statehook([command, *config_args, *(["--no-redis"] if command == "check" else [])], env,
                                tmp_path, unreadable=case.unreadable)
             for command in ("check", "run")}
    expected = "error: " + case.error.replace("{file}", path)
    for command, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        both = out + err
        assert proc.returncode == 2, (command, both)
        assert "Traceback" not in both, (command, both)
        assert [line for line in both.splitlines() if line.startswith("error:")] == [expected], (command, both)
        assert err.splitlines()[-1] == "configuration invalid: 1 problem(s)", (command, both)
        assert out == "", (command, both)
        for secret in SECRETS:
            assert secret not in both, (command, secret)


# ---- what check shows -------------------------------------------------------------------------------


def test_check_shows_header_names_and_url_hosts_never_their_secrets(tmp_path: Path) -> None:
    path = tmp_path / "statehook.toml"
    path.write_text(GOOD)
    env = {**BASE_ENV, "STATEHOOK_SENTRY_DSN": f"https://{SENTRY_KEY}@o0.ingest.sentry.io/42"}
    text = statehook(["check", "--config", str(path), "--no-redis"], env, tmp_path)
    as_json = statehook(["check", "--config", str(path), "--no-redis", "--json"], env, tmp_path)
    out, err = text.communicate(timeout=60)
    assert text.returncode == 0, out + err
    assert "headers={'Authorization': '********', 'X-Team': '********'}" in out
    assert "base_url=http://ops:********@127.0.0.1:9/artistree" in out
    assert "redis:  redis://:********@127.0.0.1:1/0" in out  # the password masked, not the database
    out_j, err_j = as_json.communicate(timeout=60)
    assert as_json.returncode == 0, out_j + err_j
    data = json.loads(out_j)
    assert data["destinations"]["automation"]["headers"] == {"Authorization": "********", "X-Team": "********"}
    assert data["providers"]["artistree"]["base_url"] == "http://ops:********@127.0.0.1:9/artistree"
    assert data["redis_url"] == "redis://:********@127.0.0.1:1/0" and data["sentry"] == "on"
    for secret in SECRETS:
        assert secret not in out + err + out_j + err_j, secret


@pytest.mark.parametrize("url, shown", [
    (f"redis+sentinel://:{REDIS_PASSWORD}@127.0.0.1:1,127.0.0.1:2/mymaster/0",
     "redis+sentinel://:********@127.0.0.1:1,127.0.0.1:2/mymaster/0"),
    ("rediss+sentinel://s1:26379,s2/mymaster", "rediss+sentinel://s1:26379,s2/mymaster"),
    ("unix:///run/redis/redis.sock?db=2", "unix:///run/redis/redis.sock?********"),
    (f"rediss://default:{REDIS_PASSWORD}@redis.example.test:6380/1?ssl_cert_reqs=none",
     "rediss://default:********@redis.example.test:6380/1?********"),
    ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
])
def test_the_urls_redis_takes_still_pass_check(
    url: str, shown: str, tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**BASE_ENV, "STATEHOOK_REDIS_URL": url}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["check", "--config", str(tmp_config(GOOD)), "--no-redis"])
    assert result.exit_code == 0, result.output
    assert f"redis:  {shown}\n" in result.output
    assert REDIS_PASSWORD not in result.output


# ---- secrets in a file others can read ------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600, 0o400])
def test_a_secret_in_a_file_others_can_read_is_a_warning_naming_its_line_and_variable(
    mode: int, tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    path = tmp_config(GOOD.replace('client_id = "cid"', f'client_id = "cid"\nclient_secret = "{CLIENT_SECRET}"'))
    path.chmod(mode)
    result = CliRunner().invoke(app, ["check", "--config", str(path), "--no-redis"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert CLIENT_SECRET not in result.output and HEADER_TOKEN not in result.output
    if not mode & 0o044:
        assert warnings == []
        return
    advice = f"a secret in a file others can read (mode {mode:o}): set it as "
    assert warnings == [  # the URL and the signing secret come from the environment: not warned about
        f"warning: {path}:4: providers.artistree.client_secret: {advice}STATEHOOK_PROVIDERS__ARTISTREE__CLIENT_SECRET"
        " instead, or make the file private (chmod 600)",
        f"warning: {path}:12: destinations.automation.url: {advice}STATEHOOK_DESTINATIONS__AUTOMATION__URL"
        " instead, or make the file private (chmod 600)",
        f"warning: {path}:13: destinations.automation.headers: {advice}STATEHOOK_DESTINATIONS__AUTOMATION__HEADERS"
        " instead, or make the file private (chmod 600)",
    ]


def test_problems_of_the_settings_and_of_a_destination_are_told_at_once(
    tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A route's bad severity hid the destination's problem until it was fixed."""
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    text = GOOD.replace('to = ["automation"]', 'to = ["automation"]\nmatch = { severity = ["urgent"] }')
    text = text.replace('kind = "webhook"', 'kind = "webhook"\ntimeout = "10m"')
    result = CliRunner().invoke(app, ["check", "--config", str(tmp_config(text)), "--no-redis"])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 2, result.output
    assert "routes.0.match.severity.0: Input should be" in errors[0]
    assert "destinations.automation.timeout: a send may take 10m" in errors[1]


def test_log_level_and_format_take_any_case(tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**BASE_ENV, "STATEHOOK_LOG_LEVEL": "DEBUG", "STATEHOOK_LOG_FORMAT": "Json"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["check", "--config", str(tmp_config(GOOD)), "--no-redis", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output[result.output.index("{"):])
    assert (shown["log_level"], shown["log_format"]) == ("debug", "json")


# ---- variables that set nothing --------------------------------------------------------------------


def test_a_variable_that_sets_nothing_is_a_warning_naming_the_nearest_one(tmp_path: Path) -> None:
    path = tmp_path / "statehook.toml"
    path.write_text(GOOD)
    path.chmod(0o600)
    (tmp_path / ".env").write_text(f"STATEHOOK_PROVIDERS_ARTISTREE__CLIENT_SECRET={CLIENT_SECRET}\n"
                                   "OTHER_PROGRAM_SETTING=1\n")
    env = {**BASE_ENV, "STATEHOOK_API_TOKEN": HEADER_TOKEN}
    text = statehook(["check", "--config", str(path), "--no-redis"], env, tmp_path)
    as_json = statehook(["check", "--config", str(path), "--no-redis", "--json"], env, tmp_path)
    expected = [
        "STATEHOOK_API_TOKEN sets nothing: not a statehook setting, ignored (did you mean STATEHOOK_API__TOKEN?)",
        "STATEHOOK_PROVIDERS_ARTISTREE__CLIENT_SECRET (in .env) sets nothing: not a statehook setting, ignored "
        "(did you mean STATEHOOK_PROVIDERS__ARTISTREE__CLIENT_SECRET?)",
    ]
    out, err = text.communicate(timeout=60)
    assert text.returncode == 0 and out.endswith("ok\n"), out + err
    assert err.splitlines() == [f"warning: {w}" for w in expected]
    out_j, _ = as_json.communicate(timeout=60)
    assert as_json.returncode == 0
    assert json.loads(out_j)["warnings"] == expected
    assert HEADER_TOKEN not in out + err + out_j and CLIENT_SECRET not in out + err + out_j


def test_run_warns_about_a_variable_that_sets_nothing_before_it_starts(
    tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker import cli

    for name, value in {**BASE_ENV, "STATEHOOK_LOG_LEVL": "debug"}.items():
        monkeypatch.setenv(name, value)
    started: list[object] = []
    monkeypatch.setattr("worker.cli_common.prepare", lambda cfg: started.append(cfg))
    monkeypatch.setattr("worker.settings.run_worker", lambda cfg: started.append(cfg))
    result = CliRunner().invoke(cli.app, ["run", "--config", str(tmp_config(GOOD))])
    assert result.exit_code == 0, result.output
    assert ("warning: STATEHOOK_LOG_LEVL sets nothing: not a statehook setting, ignored (did you mean "
            "STATEHOOK_LOG_LEVEL?)") in result.output
    assert len(started) == 2


# ---- the environment and the file's tables -----------------------------------------------------------


def test_a_variable_wins_over_the_file_for_a_hyphenated_destination(
    tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`[destinations.ops-slack]` and `STATEHOOK_DESTINATIONS__OPS_SLACK__…`: the environment
    wins, as for every other setting (the file's value won when the names were spelt apart)."""
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STATEHOOK_DESTINATIONS__OPS_SLACK__WEBHOOK_URL", SLACK_URL)
    text = GOOD + '\n[destinations.ops-slack]\nkind = "slack"\nwebhook_url = "https://hooks.slack.com/services/old"\n'
    config = load_config(tmp_config(text))
    slack = config.destinations["ops-slack"]
    assert slack.webhook_url.get_secret_value() == SLACK_URL  # type: ignore[attr-defined]


def test_one_destination_set_only_by_the_environment_with_its_kind_is_accepted(
    tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STATEHOOK_DESTINATIONS__PAGER__KIND", "console")
    assert "pager" in load_config(tmp_config(GOOD)).destinations


def _problems(path: Path) -> list[str]:
    from config import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


@pytest.mark.parametrize("in_dotenv", [False, True], ids=["environment", ".env"])
def test_a_json_table_variable_is_blamed_for_the_field_it_sets_not_the_file_line_it_overrides(
    tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, in_dotenv: bool
) -> None:
    """`STATEHOOK_WORKER='{"max_jobs": 0}'` over `[worker] max_jobs = 4`: the error named the file's line."""
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    if in_dotenv:
        (tmp_path / ".env").write_text('STATEHOOK_WORKER={"max_jobs": 0}\n')
    else:
        monkeypatch.setenv("STATEHOOK_WORKER", '{"max_jobs": 0}')
    path = tmp_config("[worker]\nmax_jobs = 4\n\n" + GOOD)
    where = ".env: STATEHOOK_WORKER" if in_dotenv else "STATEHOOK_WORKER"
    assert _problems(path) == [f"{where}: worker.max_jobs: Input should be greater than or equal to 1"]


def test_a_json_table_variable_that_sets_another_field_leaves_the_blame_on_the_file(
    tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**BASE_ENV, "STATEHOOK_WORKER": '{"poll_batch_size": 10}'}.items():
        monkeypatch.setenv(name, value)
    path = tmp_config("[worker]\nmax_jobs = 0\n\n" + GOOD)
    assert _problems(path) == [f"{path}:2: worker.max_jobs: Input should be greater than or equal to 1"]


def test_a_list_variable_replaces_the_files_list_and_is_blamed_for_it(
    tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    watches = '[{"provider": "artistree", "ids": ["ord-1"], "interval": "soon"}]'
    for name, value in {**BASE_ENV, "STATEHOOK_WATCHES": watches}.items():
        monkeypatch.setenv(name, value)
    (problem,) = _problems(tmp_config(GOOD.replace('ids = ["ord-1"]', 'ids = ["ord-1"]\ninterval = "1m"')))
    assert problem.startswith("STATEHOOK_WATCHES: watches.0.interval: not a duration"), problem


def test_a_table_header_with_a_comment_still_names_its_lines(
    tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`[providers.artistree]   # prod` broke the index: errors below it named only the file."""
    import notifiers

    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    text = (GOOD.replace("[providers.artistree]", "[providers.artistree]   # prod [eu]")
            .replace('client_id = "cid"', 'client_id = "cid"\ntimeout = "soon"')
            .replace('[[routes]]\nname = "everything"\nto = ["automation"]',
                     '[[routes]]  # "all" of it\nname = "everything"\nto = ["nowhere"]')
            + '\n[destinations."a#b"]  # quoted\nkind = "pigeon"\n')
    path = tmp_config(text)
    timeout, kind, to = (line_of(text, x) for x in ('timeout = "soon"', 'kind = "pigeon"', 'to = ["nowhere"]'))
    found = _problems(path)
    assert found[0].startswith(f"{path}:{timeout}: providers.artistree.timeout: not a duration"), found
    assert found[1:] == [
        f"{path}:{kind}: destinations.a#b.kind: unknown kind 'pigeon' (known: {', '.join(notifiers.REGISTRY)})",
        f"{path}:{to}: routes.0.to.0: unknown destination 'nowhere'",
    ], found


# ---- the redactor knows header values and URL passwords ----------------------------------------------


def test_header_values_and_url_passwords_are_secrets_of_the_config(
    tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    secrets = redact.secret_values(load_config(tmp_config(GOOD)))
    assert {HEADER_TOKEN, f"Bearer {HEADER_TOKEN}", URL_PASSWORD, "ops"} <= set(secrets)
    assert "Bearer" not in secrets  # every log line that says Bearer would be shredded
    line = redact.Redactor(secrets).text(f"GET http://127.0.0.1:9/artistree with {HEADER_TOKEN} for ops-team")
    assert HEADER_TOKEN not in line


# ---- the checks themselves, on plain values -----------------------------------------------------------


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0", "redis://:pw@h:1/", "redis://h", "rediss://u:p@h:6380/2?ssl_cert_reqs=none",
    "unix:///tmp/redis.sock", "unix:///tmp/redis.sock?db=3", "redis+sentinel://:pw@a:1,b:2/mymaster/0",
    "rediss+sentinel://a/mymaster", "redis://h:1/0?socket_timeout=2&health_check_interval=0",
])
def test_a_redis_url_redis_py_opens_has_no_problem(url: str) -> None:
    assert redis_url_problem(url) is None


@pytest.mark.parametrize("url", ["", " ", "http://h/0", "pw", "redis://h:99999/0", "redis://h:0/0", "redis://h/a",
                                 "unix://", "redis://h/0?foo=1", "redis+sentinel://:pw@/m", "redis://h/0?db=x"])
def test_a_redis_url_it_cannot_open_has_one_and_never_quotes_the_url(url: str) -> None:
    problem = redis_url_problem(url)
    assert problem is not None and "pw" not in problem


def test_a_dsn_is_checked_by_sentry_sdks_own_parser() -> None:
    assert sentry_dsn_problem(f"https://{SENTRY_KEY}@o1.ingest.sentry.io/42") is None
    for dsn in (SENTRY_KEY, f"https://{SENTRY_KEY}@", f"https://{SENTRY_KEY}@h/x", "https://h/1",
                f"https://{SENTRY_KEY}@h:99999/1"):
        problem = sentry_dsn_problem(dsn)
        assert problem is not None and SENTRY_KEY not in problem, dsn


def test_an_empty_dsn_turns_sentry_off(tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**BASE_ENV, "STATEHOOK_SENTRY_DSN": ""}.items():
        monkeypatch.setenv(name, value)
    assert load_config(tmp_config(GOOD)).settings.sentry_dsn is None


def test_check_probes_a_redis_only_after_its_url_is_valid(
    tmp_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad URL stops `check` before it opens anything: no "Redis unreachable" warning."""
    for name, value in {**BASE_ENV, "STATEHOOK_REDIS_URL": f"redis://127.0.0.1:{free_port()}/x"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["check", "--config", str(tmp_config(GOOD))])
    assert result.exit_code == 2
    assert "warning:" not in result.output and "redis_url: the database" in result.output
