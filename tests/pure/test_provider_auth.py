"""providers/auth.py and providers/client.py on plain values: what each grant sends, what a refusal
means, how long a token lives, and the error each refused reply is (the token endpoint and the
401 retry over HTTP: tests/test_provider_artistree.py, tests/test_provider_sartiq.py)."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from model.errors import NotFound, ProviderError, RateLimited, Unauthorized, Unavailable
from providers.auth import ClientCredentials, PasswordGrant, jwt_lifetime
from providers.client import error_for_reply
from transport.http import Reply

PASSWORD = "hunter2-very-secret"


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def client_credentials(scope: str | None = None) -> ClientCredentials:
    return ClientCredentials("artistree", "https://auth.example/oauth2/token", "client", SecretStr("s3cret"),
                             scope=scope, timeout=5.0)


def password_grant() -> PasswordGrant:
    return PasswordGrant("sartiq", "https://sartiq.example/api/v1/login/access-token", "u@x", SecretStr(PASSWORD),
                         timeout=5.0, default_lifetime=1800.0)


def test_client_credentials_send_the_client_in_basic_auth() -> None:
    grant = client_credentials()
    assert grant.form() == {"grant_type": "client_credentials"}
    scoped = client_credentials(scope="orders/read")
    assert scoped.form() == {"grant_type": "client_credentials", "scope": "orders/read"}
    assert grant.request_headers() == {"Authorization": "Basic " + base64.b64encode(b"client:s3cret").decode()}


@pytest.mark.parametrize(("status", "error"), [(400, Unauthorized), (401, Unauthorized), (403, Unauthorized),
                                               (429, Unavailable), (500, Unavailable), (404, Unavailable)])
def test_a_refused_client_is_unauthorized_anything_else_unavailable(status: int, error: type[ProviderError]) -> None:
    got = client_credentials().refused(Reply(status, b'{"error": "invalid_client"}'))
    assert type(got) is error and got.status == status
    assert "s3cret" not in str(got)


def test_client_credentials_lifetime_is_expires_in_else_an_hour() -> None:
    grant = client_credentials()
    assert grant.lifetime({"expires_in": 120}, "tok") == 120.0
    assert grant.lifetime({}, jwt({"exp": time.time() + 60})) == 3600.0  # the JWT is not read


def test_the_password_grant_sends_a_form_and_asks_for_json() -> None:
    grant = password_grant()
    assert grant.form() == {"grant_type": "password", "username": "u@x", "password": PASSWORD}
    assert grant.request_headers() == {"Accept": "application/json"}


def test_a_refused_login_names_the_user_never_the_password() -> None:
    grant = password_grant()
    refused = grant.refused(Reply(400, b'{"detail": "Incorrect email or password"}'))
    assert type(refused) is Unauthorized and refused.status == 400
    assert str(refused) == "sartiq: login as 'u@x' refused (HTTP 400): Incorrect email or password"
    echoed = grant.refused(Reply(401, orjson.dumps({"detail": f"password {PASSWORD} is not valid"})))
    assert type(echoed) is Unauthorized and PASSWORD not in str(echoed) and "***" in str(echoed)
    assert type(grant.refused(Reply(422, b"{}"))) is Unauthorized
    assert type(grant.refused(Reply(503, b""))) is Unavailable
    assert type(grant.refused(Reply(429, b"", "7"))) is RateLimited


def test_password_grant_lifetime_is_expires_in_then_the_jwt_then_the_setting() -> None:
    grant = password_grant()
    assert grant.lifetime({"expires_in": 120}, "tok") == 120.0
    assert 590 <= grant.lifetime({"expires_in": 0}, jwt({"exp": int(time.time()) + 600})) <= 600
    assert grant.lifetime({"expires_in": True}, "opaque") == 1800.0
    assert grant.lifetime({}, "opaque") == 1800.0


def test_jwt_lifetime_reads_exp_only_from_a_well_formed_token() -> None:
    assert jwt_lifetime("opaque") is None
    assert jwt_lifetime("a.b.c") is None
    assert jwt_lifetime(jwt({"sub": "no exp"})) is None
    assert jwt_lifetime(jwt({"exp": "soon"})) is None
    got = jwt_lifetime(jwt({"exp": time.time() + 100}))
    assert got is not None and 95 <= got <= 100


@pytest.mark.parametrize(("status", "error"), [
    (401, Unauthorized), (403, Unauthorized), (404, NotFound), (429, RateLimited), (500, Unavailable),
    (503, Unavailable), (408, Unavailable), (400, ProviderError), (410, ProviderError), (422, ProviderError),
])
def test_each_refused_reply_is_one_provider_error(status: int, error: type[ProviderError]) -> None:
    got = error_for_reply(Reply(status, b"", "7"), "rev: HTTP x")
    assert type(got) is error and got.status == status and str(got) == "rev: HTTP x"
    if isinstance(got, RateLimited):
        assert got.retry_after == 7.0
