"""The OpenAPI 3.1 description of the HTTP API (`worker/api.py` serves it at /openapi.json).

Every schema in it is generated from the models of `worker.api_models`, the ones the
handlers validate with: request bodies and answers are `components.schemas`, each query
parameter is its model's property. What is written here by hand is which route takes
which model and answers what. The document is built for one configuration: a watch
request names one of the configured providers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, TypeAdapter

from worker import api_models as m
from worker import api_silences as sil
from worker.api_ack import Acknowledged, AckRequest

__all__ = ["BODY_MODELS", "QUERY_MODELS", "REF", "openapi_spec", "parameters"]

REF = "#/components/schemas/{model}"

_ANSWERS: list[type[BaseModel]] = [m.Error, m.Health, m.HealthUnavailable, m.WatchResult, m.Watches, m.Removed,
                                   m.Resource, m.Events, m.HookAccepted, Acknowledged]
_ANSWERS += [sil.SilenceView, sil.Silences, sil.SilenceCreated]

QUERY_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("/v1/watches", "get"): m.WatchesQuery,
    ("/v1/watches", "delete"): m.UnwatchQuery,
    ("/v1/resources/{rkey}", "get"): m.ResourceQuery,
    ("/v1/events", "get"): m.EventsQuery,
    ("/v1/silences", "get"): sil.SilencesQuery,
}
"""The query-parameter model of each route that has one."""

BODY_MODELS: dict[tuple[str, str], str] = {
    ("/v1/watches", "post"): "WatchRequest",
    ("/v1/watches", "delete"): "UnwatchRequest",
}
"""The component each validated request body is (the unions over the configured providers)."""

_REFUSALS = {
    400: "the request does not match this document: `problems` names each field",
    401: "missing or invalid token",
    403: "management API disabled (no api.token)",
    404: "not found",
    408: "the body took too long to arrive",
    409: "nothing to acknowledge: no reminder is armed for the resource",
    413: "the body is larger than 8 MiB",
    422: "the notification names no resource",
    500: "internal error (logged; the body says no more)",
    503: "Redis unavailable (refused, hung, loading, read-only, failing over): `redis unavailable: <kind>`",
}
_INTEGER = {"type": "integer"}
_RETRY_AFTER = {"Retry-After": {"description": "seconds before trying again", "required": True,
                                "schema": _INTEGER}}
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "Bearer realm", "required": True,
                                          "schema": {"type": "string"}}}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(name)}}


def _answer(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": _json(schema)}
    if headers:
        out["headers"] = headers
    return out


def _answers(ok: dict[int, tuple[str, str]], *refusals: int, management: bool = True) -> dict[str, Any]:
    """`ok` (status → description, schema), `refusals`, and what every route that reads Redis
    answers: 500 for an unexpected failure, 503 while Redis is unavailable; a management
    call also 400 (a parameter), 401 and 403."""
    out = {str(status): _answer(text, schema) for status, (text, schema) in ok.items()}
    codes = {*refusals, 500, 503, *((400, 401, 403) if management else ())}
    for code in sorted(codes):
        headers = _RETRY_AFTER if code == 503 else _WWW_AUTHENTICATE if code == 401 and management else None
        out[str(code)] = _answer(_REFUSALS[code], "Error", headers)
    return out


def parameters(model: type[BaseModel], where: str) -> list[dict[str, Any]]:
    """Each field of `model` as a parameter `where` (query or path), its schema the field's."""
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", ()))
    return [{"name": name, "in": where, "required": where == "path" or name in required, "schema": prop}
            for name, prop in schema["properties"].items()]


def _schemas(providers: tuple[str, ...]) -> dict[str, Any]:
    inputs: list[tuple[str, Any, TypeAdapter[Any]]] = [
        (model.__name__, "serialization", TypeAdapter(model)) for model in _ANSWERS]
    inputs += [("RevNotification", "validation", TypeAdapter(m.RevNotification)),
               ("WatchRequest", "validation", m.watch_union(providers)),
               ("UnwatchRequest", "validation", m.watch_union(providers, unwatch=True)),
               ("AckRequest", "validation", TypeAdapter(AckRequest))]
    inputs += [(model.__name__, "validation", TypeAdapter(model)) for model in (sil.SilenceRequest,
                                                                                 sil.SilenceExtension)]
    keyed, defs = TypeAdapter.json_schemas(inputs, ref_template=REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    for name in BODY_MODELS.values():
        schemas[name] = keyed[(name, "validation")]
    return dict(sorted(schemas.items()))


def openapi_spec(providers: Iterable[str], hook_providers: Iterable[str]) -> dict[str, Any]:
    """The document, for watch requests naming one of `providers` (the configured ones) and
    inbound hooks of `hook_providers`."""
    configured = tuple(sorted(providers))
    hooks = tuple(sorted(hook_providers))
    return {
        "openapi": "3.1.0",
        "info": {"title": "statehook", "version": "1",
                 "description": "Watch resources at providers; read their state, events and deliveries."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(configured),
        },
        "paths": {**_paths(hooks), **_silence_paths()},
    }


_SILENCE_409 = ("refused by the clock or by recent events: an end in the past or past silences.max_duration, "
                "an expired silence, or a silence that mutes every recent event (or has no matcher) without force")


def _silence_answers(ok: dict[int, tuple[str, str]], *refusals: int) -> dict[str, Any]:
    out = _answers(ok, *refusals)
    if "409" in out:
        out["409"] = _answer(_SILENCE_409, "Error")
    return out


def _silence_paths() -> dict[str, Any]:
    one = parameters(sil.SilencePath, "path")
    return {
        "/v1/silences": {
            "get": {"summary": "List silences, oldest first", "security": _BEARER,
                    "parameters": parameters(QUERY_MODELS["/v1/silences", "get"], "query"),
                    "responses": _silence_answers({200: ("the silences", "Silences")})},
            "post": {"summary": "Create a silence, with what it would have muted in the last 24 h (dry_run: only that)",
                     "security": _BEARER, "requestBody": {"required": True, "content": _json("SilenceRequest")},
                     "responses": _silence_answers({200: ("a dry run: nothing stored", "SilenceCreated"),
                                                    201: ("created", "SilenceCreated")}, 408, 409, 413)},
        },
        "/v1/silences/{id}": {"get": {
            "summary": "One silence", "security": _BEARER, "parameters": one,
            "responses": _silence_answers({200: ("the silence", "SilenceView")}, 404)}},
        "/v1/silences/{id}/extend": {"post": {
            "summary": "Give a silence a new end", "security": _BEARER, "parameters": one,
            "requestBody": {"required": True, "content": _json("SilenceExtension")},
            "responses": _silence_answers({200: ("its new end", "SilenceView")}, 404, 408, 409, 413)}},
        "/v1/silences/{id}/expire": {"post": {
            "summary": "End a silence now", "security": _BEARER, "parameters": one,
            "responses": _silence_answers({200: ("expired", "SilenceView")}, 404)}},
    }


def _paths(hooks: tuple[str, ...]) -> dict[str, Any]:
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "/healthz": {"get": {
            "summary": "Redis reachable and a worker heartbeat fresher than its interval",
            "responses": {**_answers({200: ("healthy", "Health")}, management=False),
                          "503": _answer("Redis unreachable, or no fresh worker heartbeat", "HealthUnavailable",
                                         _RETRY_AFTER)}}},
        "/metrics": {"get": {
            "summary": "Prometheus text exposition",
            "responses": {**_answers({}, management=False),
                          "200": {"description": "metrics", "content": text},
                          "503": {"description": "Redis unavailable: no metrics (not zeros)",
                                  "headers": _RETRY_AFTER, "content": text}}}},
        "/v1/watches": {
            "post": {"summary": "Watch resources by id", "security": _BEARER,
                     "requestBody": {"required": True, "content": _json(BODY_MODELS["/v1/watches", "post"])},
                     "responses": _answers({200: ("all were watched already", "WatchResult"),
                                            201: ("some were new", "WatchResult")}, 408, 413)},
            "get": {"summary": "List watches, a page at a time", "security": _BEARER,
                    "parameters": parameters(QUERY_MODELS["/v1/watches", "get"], "query"),
                    "responses": _answers({200: ("a page", "Watches")})},
            "delete": {"summary": "Stop watching resources: those of the body and those of ?rkey=…",
                       "security": _BEARER,
                       "parameters": parameters(QUERY_MODELS["/v1/watches", "delete"], "query"),
                       "requestBody": {"required": False,
                                       "content": _json(BODY_MODELS["/v1/watches", "delete"])},
                       "responses": _answers({200: ("removed", "Removed")}, 408, 413)},
        },
        "/v1/resources/{rkey}": {"get": {
            "summary": "Snapshot, state and timeline (events with their deliveries) of one resource",
            "security": _BEARER,
            "parameters": [*parameters(m.ResourcePath, "path"),
                           *parameters(QUERY_MODELS["/v1/resources/{rkey}", "get"], "query")],
            "responses": _answers({200: ("the resource", "Resource")}, 404)}},
        "/v1/resources/{rkey}/ack": {"post": {
            "summary": "Acknowledge the resource's current state: its reminders stop until the state changes",
            "security": _BEARER,
            "parameters": parameters(m.ResourcePath, "path"),
            "requestBody": {"required": False, "content": _json("AckRequest")},
            "responses": _answers({200: ("acknowledged", "Acknowledged")}, 404, 408, 409, 413)}},
        "/v1/events": {"get": {
            "summary": "Recent events from the outbox (after a stream id), or one resource's timeline",
            "security": _BEARER,
            "parameters": parameters(QUERY_MODELS["/v1/events", "get"], "query"),
            "responses": _answers({200: ("events", "Events")})}},
        "/v1/hooks/{provider}/{token}": {"post": {
            "summary": "A provider's notification (Rev: JSON or a form naming order_number): poll that resource now",
            "parameters": parameters(m.hook_path(hooks), "path"),
            "requestBody": {"content": {media: {"schema": _ref("RevNotification")} for media in (
                "application/json", "application/x-www-form-urlencoded", "multipart/form-data")}},
            "responses": _answers({202: ("poll scheduled", "HookAccepted")}, 400, 401, 404, 408, 413, 422,
                                  management=False)}},
    }
