"""The OpenAPI document is the models' schemas, and the handlers refuse exactly what it
forbids: the issue's cases one by one against a served API, and the patterns that bound
values inside strings checked against the values they stand for."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from model.values import MAX_DURATION, MIN_DURATION
from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from tests import test_api
from tests.test_api import AUTH, api_config, call, serving
from worker import api_models as m
from worker.api import error, openapi_document
from worker.openapi import BODY_MODELS, QUERY_MODELS, REF, openapi_spec

sim_providers = test_api.sim_providers

SCHEMAS_OF_ANSWERS = {"Error", "Health", "HealthUnavailable", "WatchResult", "Watches", "Removed", "Resource",
                      "Events", "HookAccepted"}


# ---- the document is generated from the models ------------------------------------------------------


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_every_validated_query_parameter_is_its_models_property() -> None:
    doc = openapi_spec(["rev", "artistree"], ["rev"])
    for (path, method), model in QUERY_MODELS.items():
        schema = model.model_json_schema(ref_template=REF)
        found = {p["name"]: p for p in doc["paths"][path][method]["parameters"] if p["in"] == "query"}
        assert set(found) == set(schema["properties"]), (path, method)
        for name, param in found.items():
            assert param["schema"] == schema["properties"][name], (path, method, name)
            assert param["required"] == (name in schema.get("required", ())), (path, method, name)
    (rkey,) = [p for p in doc["paths"]["/v1/resources/{rkey}"]["get"]["parameters"] if p["in"] == "path"]
    assert rkey["schema"] == m.ResourcePath.model_json_schema()["properties"]["rkey"]


def test_every_validated_body_is_the_union_of_the_configured_providers_models() -> None:
    doc = openapi_spec(["rev", "artistree"], ["rev"])
    schemas = doc["components"]["schemas"]
    for (path, method), name in BODY_MODELS.items():
        content = doc["paths"][path][method]["requestBody"]["content"]
        assert content == {"application/json": {"schema": {"$ref": REF.format(model=name)}}}
        union = m.watch_union(("artistree", "rev"), unwatch=method == "delete").json_schema(ref_template=REF)
        union.pop("$defs")
        assert schemas[name] == union, name
        for provider in ("artistree", "rev"):
            model = m.unwatch_model(provider) if method == "delete" else m.watch_model(provider)
            expected = model.model_json_schema(ref_template=REF)
            expected.pop("$defs", None)
            assert schemas[model.__name__] == expected
    # one configured provider: its model alone, no other provider's is named
    single = openapi_spec(["rev"], ["rev"])["components"]["schemas"]
    assert single["WatchRequest"] == {"$ref": REF.format(model="RevWatchRequest")}
    assert "ArtistreeWatchRequest" not in single


def test_every_answer_is_a_models_schema_and_every_refusal_an_error() -> None:
    doc = openapi_spec(["rev"], ["rev"])
    schemas = doc["components"]["schemas"]
    for name in SCHEMAS_OF_ANSWERS:
        model = getattr(m, name)
        expected = TypeAdapter(model).json_schema(mode="serialization", ref_template=REF)
        expected.pop("$defs", None)
        assert schemas[name] == expected, name
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, answer in op["responses"].items():
                for media, content in answer.get("content", {}).items():
                    if media == "text/plain":
                        continue
                    ref = content["schema"]["$ref"].rsplit("/", 1)[1]
                    assert ref in schemas, (path, method, status)
                    if int(status) >= 400 and path != "/healthz":
                        assert ref == "Error", (path, method, status)
                if status == "503":
                    assert answer["headers"]["Retry-After"]["required"] is True, (path, method)


def test_error_bodies_carry_only_what_the_error_schema_declares() -> None:
    assert error(400, "x", problems=[{"field": "ids", "problem": "bad"}]).status == 400
    with pytest.raises(ValidationError):
        error(400, "x", anything="else")


# ---- patterns that bound numbers inside strings ------------------------------------------------------


@pytest.mark.parametrize(("lo", "hi"), [(1, 9), (1, 10), (5, 123), (37, 37), (99, 101), (1, 100_000), (100, 20_000)])
def test_an_integer_range_pattern_matches_exactly_its_integers(lo: int, hi: int) -> None:
    pattern = re.compile(f"(?:{m.integer_range_pattern(lo, hi)})")
    for n in range(0, hi + 200):
        assert bool(pattern.fullmatch(str(n))) == (lo <= n <= hi), n
    assert not pattern.fullmatch("0" + str(lo))


@settings(max_examples=300, deadline=None)
@given(st.from_regex(m.INTERVAL_TEXT, fullmatch=True))
def test_every_interval_text_the_document_allows_is_within_the_bounds(text: str) -> None:
    req = m.watch_model("rev").model_validate({"provider": "rev", "ids": ["x"], "interval": text})
    assert req.interval is not None and MIN_DURATION <= req.interval <= MAX_DURATION


@pytest.mark.parametrize("text", ["100ms", "0.1", "0.2s", "90", "90s", "5m", "1.5h", "720h", "30d", "30.0d",
                                  "2592000000ms", "43200m"])
def test_interval_texts_at_the_bounds_are_accepted(text: str) -> None:
    assert re.fullmatch(m.INTERVAL_TEXT, text)
    m.watch_model("rev").model_validate({"provider": "rev", "ids": ["x"], "interval": text})


@pytest.mark.parametrize("text", ["99ms", "0.09s", "0s", "0", "31d", "30.1d", "721h", "2592001", "1h30m", "05m",
                                  "5M", " 5m", "5 m", "1e2", "inf", "nan", "", "٥m", "1_0s"])
def test_interval_texts_past_the_bounds_or_the_grammar_are_refused(text: str) -> None:
    assert not re.fullmatch(m.INTERVAL_TEXT, text)
    with pytest.raises(ValidationError) as caught:
        m.watch_model("rev").model_validate({"provider": "rev", "ids": ["x"], "interval": text})
    assert [p["field"] for p in m.problems(caught.value)] == ["interval"]


@pytest.mark.parametrize("rid", ["\ufeffx", "a\x85b", "a\u3000b", "a\rb", "a/b", "a?b", "a#b", "", "x" * 257])
def test_the_id_pattern_refuses_the_same_ids_in_pydantic_and_in_python(rid: str) -> None:
    """The document's pattern, pydantic's (Rust regex) and the CLI's (Python re) agree even
    on characters whose whitespace-ness they disagree on for \\s."""
    assert not re.match(m.ID_PATTERN, rid)
    with pytest.raises(ValidationError):
        m.watch_model("rev").model_validate({"provider": "rev", "ids": [rid]})


# ---- the cases, against a served API -------------------------------------------------------------


BAD_BODIES = [
    ({"provider": "rev", "ids": [""]}, "ids.0"),
    ({"provider": "rev", "kind": "", "ids": ["TC1"]}, None),
    ({"provider": "rev", "kind": "work_order", "ids": ["TC1"]}, None),
    ({"provider": "rev", "ids": ["TC1"], "discovered": "yes"}, "discovered"),
    ({"provider": "rev", "ids": ["TC1"], "discovered": 1}, "discovered"),
    ({"provider": "rev", "ids": ["TC1"], "interval": "1h30m"}, "interval"),
    ({"provider": "rev", "ids": ["TC1"], "colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
async def test_a_body_the_document_forbids_is_400_naming_the_field(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, body: dict[str, Any],
    field: str | None,
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver)
    async with serving(config) as (_, http):
        for method in ("POST", "DELETE"):
            sent = body if method == "POST" else {k: v for k, v in body.items() if k not in ("discovered", "interval")}
            if sent == {"provider": "rev", "ids": ["TC1"]}:
                continue
            status, answer = await call(http, method, "/v1/watches", headers=AUTH, json=sent)
            assert status == 400, (method, sent, answer)
            if field is None:
                assert "kind" in answer["error"] and answer["known"] == ["order"]
            else:
                assert [p["field"] for p in answer["problems"]] == [field], answer
                assert answer["error"].startswith("invalid watch request: " + field), answer
                assert "^[" not in answer["error"], "a pattern is said in words"


async def test_a_delete_body_with_an_unknown_field_is_refused_and_nothing_is_removed(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver)
    async with serving(config) as (_, http):
        status, _ = await call(http, "POST", "/v1/watches", headers=AUTH, json={"provider": "rev", "ids": ["TC1"]})
        assert status == 201
        for extra in ({"interval": "5m"}, {"discovered": False}, {"idz": ["TC1"]}):
            status, answer = await call(http, "DELETE", "/v1/watches", headers=AUTH,
                                        json={"provider": "rev", "ids": ["TC1"], **extra})
            (name,) = extra
            assert (status, answer["problems"]) == (400, [{"field": name, "problem": "Extra inputs are not permitted"}])
        # the body and ?rkey= together: both are removed
        status, _ = await call(http, "POST", "/v1/watches", headers=AUTH, json={"provider": "rev", "ids": ["TC2"]})
        status, answer = await call(http, "DELETE", "/v1/watches?rkey=rev:order:TC2", headers=AUTH,
                                    json={"provider": "rev", "ids": ["TC1"]})
        assert (status, answer) == (200, {"removed": 2, "rkeys": ["rev:order:TC2", "rev:order:TC1"]})
        status, answer = await call(http, "DELETE", "/v1/watches", headers=AUTH)
        assert (status, answer) == (200, {"removed": 0, "rkeys": []})


BAD_QUERIES = [
    ("/v1/watches?source=bogus", "source", "Input should be 'config', 'api', 'cli' or 'scan'"),
    ("/v1/watches?provider=&cursor=", "provider,cursor", None),
    ("/v1/watches?cursor=", "cursor", None),
    ("/v1/watches?cursor=12.", "cursor", None),
    ("/v1/watches?cursor=1.0.QQ", "cursor", None),
    ("/v1/watches?cursor=1.70000.QQ", "cursor", None),
    ("/v1/watches?cursor=007", "cursor", None),
    ("/v1/watches?limit=%205", "limit", "must be an integer"),
    ("/v1/watches?limit=+5", "limit", "must be an integer"),
    ("/v1/watches?limit=1001", "limit", "Input should be less than or equal to 1000"),
    ("/v1/watches?cursor=18446744073709551616", "cursor", None),
    ("/v1/events?after=", "after", None),
    ("/v1/events?after=99999999999999999999", "after", None),
    ("/v1/events?rkey=", "rkey", None),
    ("/v1/events?limit=1.5", "limit", "must be an integer"),
    ("/v1/resources/rev:order:TC1?history=-1", "history", None),
    ("/v1/watches?rkey=nokey", None, None),  # GET ignores a parameter it does not have
    ("/v1/resources/nokey", "rkey", None),
]


@pytest.mark.parametrize(("path", "field", "problem"), BAD_QUERIES)
async def test_a_query_the_document_forbids_is_400_naming_the_parameter(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, path: str, field: str | None,
    problem: str | None,
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver)
    async with serving(config) as (_, http):
        status, answer = await call(http, "GET", path, headers=AUTH)
    if field is None:
        assert status == 200, answer
        return
    assert status == 400, answer
    assert [p["field"] for p in answer["problems"]] == field.split(","), answer
    if problem is not None:
        assert answer["problems"][0]["problem"] == problem
    if "?" in path:
        assert answer["error"].startswith("invalid query: " + field.split(",")[0] + ": "), answer


async def test_a_method_a_route_does_not_have_is_405_with_allow(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver)
    async with serving(config) as (_, http):
        for method, path, allowed in [("PATCH", "/v1/watches", {"GET", "HEAD", "POST", "DELETE"}),
                                      ("PUT", "/healthz", {"GET", "HEAD"}),
                                      ("OPTIONS", "/v1/events", {"GET", "HEAD"})]:
            async with http.request(method, path, headers=AUTH) as resp:
                assert resp.status == 405, (method, path)
                assert set(resp.headers["Allow"].split(",")) == allowed
                assert (await resp.json())["error"] == "Method Not Allowed"


async def test_healthz_unavailable_is_the_documented_model_with_retry_after(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver)
    async with serving(config) as (_, http):
        async with http.get("/healthz") as resp:
            body = await resp.json()
            assert (resp.status, resp.headers["Retry-After"]) == (503, "5")
    assert body == {"status": "unavailable", "reason": "no worker heartbeat", "workers": []}
    m.HealthUnavailable.model_validate(body)


async def test_the_served_document_names_the_configured_providers_only(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver, providers={"rev": test_api.provider_blocks(sim)["rev"]})
    async with serving(config) as (_, http):
        status, doc = await call(http, "GET", "/openapi.json")
    assert status == 200 and doc == openapi_document(config)
    post = _resolve(doc, doc["paths"]["/v1/watches"]["post"]["requestBody"]["content"]["application/json"]["schema"])
    assert post["properties"]["provider"] == {"const": "rev", "title": "Provider", "type": "string"}
