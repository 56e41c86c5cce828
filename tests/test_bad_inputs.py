"""A corpus of a new user's and an operator's mistakes, run through `statehook check`: each
gets exit 2 and one `error:` line per problem (a warning: exit 0), never a traceback, and no
secret of the configuration, planted in every case, is ever printed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from worker.cli import app

# planted in every case: none may appear in any output
ARTISTREE_SECRET = "artistree-S3CRET-4f1c9"
HEADER_SECRET = "Bearer hdr-S3CRET-77aa"
URL_PASSWORD = "urlpw-S3CRET-0b2"
WEBHOOK_URL = "https://automation.example.test/in?token=tok-S3CRET-e5d"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/slack-S3CRET-9c"
REDIS_PASSWORD = "redispw-S3CRET-31"
SENTRY_KEY = "0123456789abcdef0123456789abcdef"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRETS = (ARTISTREE_SECRET, HEADER_SECRET.split()[1], URL_PASSWORD, "tok-S3CRET-e5d", "slack-S3CRET-9c",
           REDIS_PASSWORD, SENTRY_KEY, WHSEC.removeprefix("whsec_"))

BASE_ENV = {
    "STATEHOOK_PROVIDERS__ARTISTREE__CLIENT_SECRET": ARTISTREE_SECRET,
    "STATEHOOK_DESTINATIONS__AUTOMATION__URL": WEBHOOK_URL,
    "STATEHOOK_DESTINATIONS__AUTOMATION__SECRET": WHSEC,
    "STATEHOOK_DESTINATIONS__OPS_SLACK__WEBHOOK_URL": SLACK_URL,
    "STATEHOOK_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0",
}

GOOD = f"""
[providers.artistree]
base_url = "http://ops:{URL_PASSWORD}@127.0.0.1:9/artistree"
client_id = "cid"

[[watches]]
provider = "artistree"
ids = ["ord-1", "ord-2"]
interval = "1m"

[destinations.automation]
kind = "webhook"
headers = {{ Authorization = "{HEADER_SECRET}" }}

[destinations.ops-slack]
kind = "slack"

[[routes]]
name = "everything"
to = ["automation", "ops-slack"]
"""


@dataclass(frozen=True)
class Case:
    name: str
    toml: str | bytes | None = GOOD
    """the file's text (bytes: written as is); None: no file, `--config` names a directory"""
    env: dict[str, str] = field(default_factory=dict)
    code: int = 2
    errors: int = 1
    """how many `error:` lines (a warning-only case: 0)"""


def edit(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


CASES = [
    # -- the file itself
    Case("toml syntax", GOOD + "\n[[routes]\n"),
    Case("invalid utf-8", GOOD.encode() + b"\n# caf\xe9 \xff\n"),
    Case("a directory", None),
    Case("empty file: the environment names what the file lacks", "", errors=3),
    Case("unknown top-level key", GOOD + "\nprovider = 1\n"),
    Case("a table where a list goes", GOOD.replace("[[watches]]", "[watches]", 1)),
    # -- providers
    Case("unknown provider", edit("[providers.artistree]", "[providers.artistre]"), errors=2),
    Case("provider field missing", edit('client_id = "cid"\n', "")),
    Case("provider unknown field", edit('client_id = "cid"\n', 'client_id = "cid"\nclient_sercet = "x"\n')),
    Case("provider field wrong type", edit('client_id = "cid"\n', 'client_id = "cid"\nmax_concurrency = "lots"\n')),
    Case("provider number out of range", edit('client_id = "cid"\n', 'client_id = "cid"\npage_size = 0\n')),
    Case("provider huge integer",
         edit('client_id = "cid"\n', 'client_id = "cid"\nmax_concurrency = 99999999999999999999\n')),
    Case("provider bad duration", edit('client_id = "cid"\n', 'client_id = "cid"\ntimeout = "soon"\n')),
    Case("provider negative duration", edit('client_id = "cid"\n', 'client_id = "cid"\nterminal_tail = -1\n')),
    Case("provider endless duration", edit('client_id = "cid"\n', 'client_id = "cid"\ninterval_idle = "400d"\n')),
    # -- watches
    Case("watch without ids or scan", edit('ids = ["ord-1", "ord-2"]\n', "")),
    Case("watch with ids and scan", edit('ids = ["ord-1", "ord-2"]\n', 'ids = ["a"]\nscan = { project_id = "p" }\n')),
    Case("watch of an unknown provider", edit('provider = "artistree"\nids', 'provider = "rev"\nids')),
    Case("watch interval nonsense", edit('interval = "1m"', 'interval = "every minute"')),
    Case("watch interval zero", edit('interval = "1m"', "interval = 0")),
    Case("watch ids not a list", edit('ids = ["ord-1", "ord-2"]', 'ids = "ord-1"')),
    Case("watch empty id", edit('ids = ["ord-1", "ord-2"]', 'ids = ["ord-1", ""]')),
    Case("watch id with a slash and one with a space",
         edit('ids = ["ord-1", "ord-2"]', 'ids = ["ord/1", "ord 2"]'), errors=2),
    Case("watch scan with a key the scan does not read",
         edit('ids = ["ord-1", "ord-2"]', 'scan = { project_id = "All Projects", projct = "x" }')),
    Case("watch scan missing its required key", edit('ids = ["ord-1", "ord-2"]', 'scan = { preview = "true" }')),
    Case("watch unknown field", edit('interval = "1m"', 'interval = "1m"\nevery = "1m"')),
    # -- destinations
    Case("destination without kind", edit('kind = "slack"\n', "")),
    Case("destination unknown kind", edit('kind = "slack"', 'kind = "teams"')),
    Case("webhook url not http", edit('kind = "webhook"\n', 'kind = "webhook"\n'),
         env={"STATEHOOK_DESTINATIONS__AUTOMATION__URL": "ftp://automation.example.test/tok-S3CRET-e5d"}),
    Case("webhook secret not whsec", env={"STATEHOOK_DESTINATIONS__AUTOMATION__SECRET": "tok-S3CRET-e5d"}),
    Case("webhook secret not base64", env={"STATEHOOK_DESTINATIONS__AUTOMATION__SECRET": "whsec_!!tok-S3CRET-e5d!!"}),
    Case("webhook reserved header", edit('headers = {', 'headers = { webhook-id = "x", ')),
    Case("webhook header not a string", edit('headers = {', 'headers = { X-Retries = 3, ')),
    Case("negative retry delay", edit('kind = "webhook"\n', 'kind = "webhook"\nretry_schedule = [-2, 5, 10]\n')),
    Case("jitter above 1", edit('kind = "webhook"\n', 'kind = "webhook"\njitter = 2\n')),
    Case("slack bot token without channel", env={"STATEHOOK_DESTINATIONS__OPS_SLACK__BOT_TOKEN": "xoxb-S3CRET"}),
    Case("email without recipients", GOOD + '\n[destinations.mail]\nkind = "email"\nhost = "h"\nfrom = "a@b.test"\n'),
    Case("email port out of range", GOOD + '\n[destinations.mail]\nkind = "email"\nhost = "h"\nfrom = "a@b.test"\n'
         'to = ["c@d.test"]\nport = 70000\n'),
    Case("two destinations differing by - and _", GOOD + '\n[destinations.ops_slack]\nkind = "console"\n'),
    Case("env secret for a destination the file lacks",
         env={"STATEHOOK_DESTINATIONS__PAGER__WEBHOOK_URL": SLACK_URL}),
    # -- routes
    Case("route to an unknown destination", edit('to = ["automation", "ops-slack"]', 'to = ["automation", "pager"]')),
    Case("route with no destination", edit('to = ["automation", "ops-slack"]', "to = []")),
    Case("route unknown severity", edit('name = "everything"', 'name = "everything"\nmatch = { severity = "urgent" }')),
    Case("route unknown provider", edit('name = "everything"', 'name = "everything"\nmatch = { provider = "revv" }')),
    Case("route bad template", edit('name = "everything"', 'name = "everything"\ntemplate = "{{ event.summary "')),
    Case("duplicate route names", GOOD + '\n[[routes]]\nname = "everything"\nto = ["automation"]\n'),
    Case("route throttle nonsense", edit('name = "everything"', 'name = "everything"\nthrottle = "often"')),
    # -- the environment
    Case("redis url of another scheme", env={"STATEHOOK_REDIS_URL": f"http://:{REDIS_PASSWORD}@127.0.0.1:6379/0"}),
    Case("redis url empty", env={"STATEHOOK_REDIS_URL": ""}),
    Case("redis url port not a number", env={"STATEHOOK_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:notaport/0"}),
    Case("redis url database not a number", env={"STATEHOOK_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/zero"}),
    Case("sentry dsn invalid", env={"STATEHOOK_SENTRY_DSN": f"https://{SENTRY_KEY}@"}),
    Case("sentry dsn not a url", env={"STATEHOOK_SENTRY_DSN": SENTRY_KEY}),
    Case("log level unknown", env={"STATEHOOK_LOG_LEVEL": "verbose"}),
    Case("api port not a number", env={"STATEHOOK_API__PORT": "eighty"}),
    Case("api port out of range", env={"STATEHOOK_API__PORT": "99999"}),
    Case("worker tuning unknown", env={"STATEHOOK_WORKER__POLL_BATCH": "10"}),
    Case("unknown variable (warning)", env={"STATEHOOK_API_TOKEN": "tok-S3CRET-e5d"}, code=0, errors=0),
    Case("config file missing", env={"STATEHOOK_CONFIG_FILE": "/nonexistent/statehook.toml"}),
]


@pytest.fixture
def clean_env() -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("STATEHOOK_")}
    for key in saved:
        del os.environ[key]
    yield
    os.environ.update(saved)


def run_check(case: Case, tmp_path: Path, *extra: str) -> tuple[int, str, BaseException | None]:
    if case.toml is None:
        target = tmp_path
    else:
        target = tmp_path / "statehook.toml"
        target.write_bytes(case.toml if isinstance(case.toml, bytes) else case.toml.encode())
    env = {**BASE_ENV, **case.env}
    args = ["check", "--no-redis", *extra]
    if "STATEHOOK_CONFIG_FILE" not in case.env:
        args += ["--config", str(target)]
    result = CliRunner().invoke(app, args, env=env)
    crash = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.output, crash


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_mistake_gets_one_line_per_problem_and_shows_no_secret(clean_env: None, tmp_path: Path, case: Case) -> None:
    code, out, crash = run_check(case, tmp_path)
    assert crash is None, f"{case.name}: crashed: {crash!r}"
    assert "Traceback" not in out
    for secret in SECRETS:
        assert secret not in out, f"{case.name}: printed a secret"
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert code == case.code, out
    if case.code == 2:
        assert len(errors) == case.errors, out
        others = [line for line in out.splitlines()
                  if not line.startswith(("error: ", "warning: ", "configuration invalid"))]
        assert not others, out
    else:
        assert not errors, out


def test_a_good_config_shows_no_secret_in_text_or_json(clean_env: None, tmp_path: Path) -> None:
    for extra in ((), ("--json",)):
        code, out, crash = run_check(Case("good", code=0), tmp_path, *extra)
        assert crash is None and code == 0, out
        for secret in SECRETS:
            assert secret not in out, (extra, secret)
        assert "127.0.0.1:1/0" in out  # the Redis URL: its password masked, not its database
