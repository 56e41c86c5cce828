"""The OpenAPI 3 description of the HTTP API (`worker/api.py` serves it at /openapi.json):
what each route takes and what it answers, refusals included."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["openapi_spec"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_RETRY_AFTER = {"Retry-After": {"description": "seconds before trying again", "schema": {"type": "integer"}}}


def _answers(ok: tuple[int, str, str | None], *refusals: int, redis: bool = True) -> dict[str, Any]:
    """`ok` and `refusals`; a route that reads Redis (`redis`) also answers 503 while Redis
    is unavailable, and 500 for an unexpected failure (no traceback in the body)."""
    status, description, schema = ok
    out: dict[str, Any] = {str(status): {"description": description}}
    if schema:
        out[str(status)]["content"] = {"application/json": {"schema": _ref(schema)}}
    for code in (*refusals, *((500, 503) if redis else ())):
        out[str(code)] = {"description": _REFUSALS[code], "content": {"application/json": {"schema": _ref("Error")}}}
        if code == 503:
            out[str(code)]["headers"] = _RETRY_AFTER
    return out


_REFUSALS = {
    400: "bad request: the body or a parameter is malformed",
    401: "missing or invalid token",
    403: "management API disabled (no api.token)",
    404: "not found",
    422: "the request is well-formed but names something invalid",
    500: "internal error (logged; the body says no more)",
    503: "Redis unavailable (refused, hung, loading, read-only, failing over): `redis unavailable: <kind>`",
}
_ORDER_NUMBER_BODY = {"type": "object", "properties": {"order_number": {"type": "string"}}}


def openapi_spec(max_ids: int, hook_providers: Iterable[str]) -> dict[str, Any]:
    """The document, for request bodies of at most `max_ids` ids and inbound hooks of
    `hook_providers`."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "statehook", "version": "1",
                 "description": "Watch resources at providers; read their state, events and deliveries."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"],
                          "properties": {"error": {"type": "string"}}, "additionalProperties": True},
                "WatchRequest": {
                    "type": "object", "required": ["provider", "ids"], "additionalProperties": False,
                    "properties": {
                        "provider": {"type": "string", "example": "rev"},
                        "kind": {"type": "string", "description": "defaults to the provider's (order)"},
                        "ids": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": max_ids},
                        "interval": {"oneOf": [{"type": "number"}, {"type": "string", "example": "5m"}],
                                     "description": "seconds, or a duration such as 30s, 5m; default 60"},
                        "discovered": {"type": "boolean", "default": False},
                    },
                },
                "WatchResult": {"type": "object", "properties": {
                    "provider": {"type": "string"}, "kind": {"type": "string"}, "interval": {"type": "number"},
                    "watched": {"type": "integer"}, "added": {"type": "integer"},
                    "rkeys": {"type": "array", "items": {"type": "string"}}}},
                "Watches": {"type": "object", "properties": {
                    "watches": {"type": "array", "items": {"type": "object"}},
                    "cursor": {"type": "string", "nullable": True}}},
                "Removed": {"type": "object", "properties": {"removed": {"type": "integer"},
                                                             "rkeys": {"type": "array", "items": {"type": "string"}}}},
                "Resource": {"type": "object", "properties": {
                    "rkey": {"type": "string"}, "watch": {"type": "object", "nullable": True},
                    "due_at": {"type": "number", "nullable": True}, "state": {"type": "object", "nullable": True},
                    "consecutive_errors": {"type": "integer"}, "snapshot": {"type": "object", "nullable": True},
                    "history": {"type": "array", "items": {"type": "object"}}}},
                "Events": {"type": "object", "properties": {
                    "events": {"type": "array", "items": {"type": "object"}},
                    "next": {"type": "string", "nullable": True}}},
                "Health": {"type": "object", "properties": {
                    "status": {"type": "string", "enum": ["ok", "unavailable"]}, "reason": {"type": "string"},
                    "workers": {"type": "array", "items": {"type": "object"}}}},
                "HookAccepted": {"type": "object", "properties": {"rkey": {"type": "string"},
                                                                  "status": {"type": "string"}}},
            },
        },
        "paths": {
            "/healthz": {"get": {"summary": "Redis reachable and a worker heartbeat fresher than its interval",
                                 "responses": {**_answers((200, "healthy", "Health"), redis=False),
                                               "503": {"description": "Redis unreachable or no fresh heartbeat",
                                                       "headers": _RETRY_AFTER,
                                                       "content": {"application/json": {
                                                           "schema": _ref("Health")}}}}}},
            "/metrics": {"get": {"summary": "Prometheus text exposition",
                                 "responses": {"200": {"description": "metrics",
                                                       "content": {"text/plain": {"schema": {"type": "string"}}}},
                                               "503": {"description": "Redis unavailable: no metrics (not zeros)",
                                                       "headers": _RETRY_AFTER,
                                                       "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/v1/watches": {
                "post": {"summary": "Watch resources by id", "security": [{"bearer": []}],
                         "requestBody": {"required": True,
                                         "content": {"application/json": {"schema": _ref("WatchRequest")}}},
                         "responses": {**_answers((201, "some were new", "WatchResult"), 400, 401, 403, 422),
                                       "200": {"description": "all were watched already",
                                               "content": {"application/json": {"schema": _ref("WatchResult")}}}}},
                "get": {"summary": "List watches, a page at a time", "security": [{"bearer": []}],
                        "parameters": [
                            {"name": "provider", "in": "query", "schema": {"type": "string"}},
                            {"name": "source", "in": "query", "schema": {"type": "string",
                                                                         "enum": ["config", "api", "cli"]}},
                            {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 100}},
                            {"name": "cursor", "in": "query", "schema": {"type": "string"}}],
                        "responses": _answers((200, "a page", "Watches"), 400, 401, 403)},
                "delete": {"summary": "Stop watching resources (body as for POST, or ?rkey=… repeated)",
                           "security": [{"bearer": []}],
                           "parameters": [{"name": "rkey", "in": "query", "schema": {"type": "string"}}],
                           "requestBody": {"content": {"application/json": {"schema": _ref("WatchRequest")}}},
                           "responses": _answers((200, "removed", "Removed"), 400, 401, 403, 422)},
            },
            "/v1/resources/{rkey}": {"get": {
                "summary": "Snapshot, state and timeline (events with their deliveries) of one resource",
                "security": [{"bearer": []}],
                "parameters": [{"name": "rkey", "in": "path", "required": True, "schema": {"type": "string"},
                                "example": "rev:order:TC432432"},
                               {"name": "history", "in": "query", "schema": {"type": "integer", "default": 50}}],
                "responses": _answers((200, "the resource", "Resource"), 400, 401, 403, 404)}},
            "/v1/events": {"get": {
                "summary": "Recent events from the outbox (after a stream id), or one resource's timeline",
                "security": [{"bearer": []}],
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "default": 100}},
                               {"name": "after", "in": "query", "schema": {"type": "string"}},
                               {"name": "rkey", "in": "query", "schema": {"type": "string"}}],
                "responses": _answers((200, "events", "Events"), 400, 401, 403)}},
            "/v1/hooks/{provider}/{token}": {"post": {
                "summary": "A provider's notification (Rev: JSON or form with order_number): poll that resource now",
                "parameters": [{"name": "provider", "in": "path", "required": True,
                                "schema": {"type": "string", "enum": sorted(hook_providers)}},
                               {"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
                                "description": "api.hook_tokens.<provider>"}],
                "requestBody": {"content": {
                    "application/json": {"schema": _ORDER_NUMBER_BODY},
                    "application/x-www-form-urlencoded": {"schema": _ORDER_NUMBER_BODY}}},
                "responses": _answers((202, "poll scheduled", "HookAccepted"), 400, 401, 404, 422)}},
        },
    }
