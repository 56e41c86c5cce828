"""The simulator's frame: one aiohttp app, one URL prefix per provider, fault injection.

Each provider's stand-in is a `SimProvider` in its own module. It is mounted under
`/{name}` (so its base URL is `http://host:port/{name}`) and its control routes under
`/_sim/{name}`. Faults are injected per provider and path prefix, over HTTP
(`POST /_sim/faults`) or directly from a test.
"""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

__all__ = ["Fault", "FaultTable", "SimProvider", "Simulator", "json_response", "read_json_object"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json",
                        headers=headers)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; an empty or unreadable body counts as `{}`."""
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(slots=True)
class Fault:
    """What to do instead of (or before) answering normally.

    status: answer with this status (and `body`, and `Retry-After` if set);
    delay: sleep this long first (past a client's timeout, it is a timeout);
    malformed: answer 200 with a body that is not JSON;
    times: how many matching requests it applies to (None: until cleared)."""

    status: int | None = None
    body: bytes = b""
    retry_after: float | None = None
    delay: float = 0.0
    malformed: bool = False
    times: int | None = None


@dataclass(slots=True)
class _Entry:
    provider: str
    path_prefix: str
    fault: Fault


@dataclass
class FaultTable:
    entries: list[_Entry] = field(default_factory=list)

    def add(self, provider: str, path_prefix: str, fault: Fault) -> None:
        """`path_prefix` is relative to the provider's base URL, e.g. `/v1/orders/ord-1`."""
        self.entries.append(_Entry(provider, path_prefix, fault))

    def clear(self, provider: str | None = None) -> None:
        self.entries = [e for e in self.entries if provider is not None and e.provider != provider]

    def take(self, provider: str, path: str) -> Fault | None:
        for entry in self.entries:
            if entry.provider == provider and path.startswith(entry.path_prefix):
                fault = entry.fault
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.entries.remove(entry)
                return fault
        return None


class SimProvider(ABC):
    """One provider's stand-in: its API routes, its control routes, its scripted progression."""

    name: str

    @abstractmethod
    def add_api_routes(self, app: web.Application) -> None:
        """Routes of the provider's API, relative to its prefix (`/v1/orders/{order_id}`)."""

    def add_control_routes(self, app: web.Application) -> None:
        """Routes under `/_sim/{name}` to drive state from outside the process."""

    def step(self, rng: random.Random) -> list[str]:
        """Advance the scripted progression one step; returns what changed, for display."""
        return []


class Simulator:
    def __init__(self, providers: list[SimProvider], *, seed: int = 7) -> None:
        self.providers = {p.name: p for p in providers}
        self.faults = FaultTable()
        self.requests: Counter[str] = Counter()
        self.rng = random.Random(seed)
        self._runner: web.AppRunner | None = None
        self._mounts: dict[str, web.Application] = {}
        self.base_url = ""

    def mount(self, name: str, app: web.Application) -> None:
        """Serve `app` under `/{name}` too (before `start`): another stand-in on the same port."""
        if name in self.providers or name == "_sim":
            raise ValueError(f"/{name} is taken")
        self._mounts[name] = app

    def __getitem__(self, name: str) -> Any:
        return self.providers[name]

    def url(self, provider: str) -> str:
        return f"{self.base_url}/{provider}"

    def make_app(self) -> web.Application:
        root = web.Application(middlewares=[self._fault_middleware])
        for name, provider in self.providers.items():
            api = web.Application()
            provider.add_api_routes(api)
            root.add_subapp(f"/{name}/", api)
            control = web.Application()
            provider.add_control_routes(control)
            root.add_subapp(f"/_sim/{name}/", control)
        for name, app in self._mounts.items():
            root.add_subapp(f"/{name}/", app)
        root.router.add_post("/_sim/faults", self._post_fault)
        root.router.add_delete("/_sim/faults", self._clear_faults)
        root.router.add_post("/_sim/step", self._post_step)
        return root

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    def step(self) -> list[str]:
        changed: list[str] = []
        for provider in self.providers.values():
            changed.extend(provider.step(self.rng))
        return changed

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        parts = request.path.split("/", 2)
        provider = parts[1] if len(parts) > 1 else ""
        if provider not in self.providers:
            return await handler(request)
        self.requests[provider] += 1
        rel = "/" + (parts[2] if len(parts) > 2 else "")
        fault = self.faults.take(provider, rel)
        if fault is None:
            return await handler(request)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.malformed:
            return web.Response(body=b'{"broken": "json, "x": 1}', content_type="application/json")
        if fault.status is not None:
            headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after is not None else {}
            return web.Response(body=fault.body, status=fault.status, headers=headers,
                                content_type="application/json" if fault.body else None)
        return await handler(request)

    async def _post_fault(self, request: web.Request) -> web.Response:
        data = await request.json()
        try:
            fault = Fault(
                status=data.get("status"),
                body=str(data.get("body", "")).encode(),
                retry_after=data.get("retry_after"),
                delay=float(data.get("delay", 0)),
                malformed=bool(data.get("malformed", False)),
                times=data.get("times"),
            )
            self.faults.add(data["provider"], data.get("path", "/"), fault)
        except (KeyError, TypeError, ValueError) as exc:
            return json_response({"detail": f"bad fault: {exc}"}, status=400)
        return json_response({"ok": True}, status=201)

    async def _clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear(request.query.get("provider"))
        return json_response({"ok": True})

    async def _post_step(self, request: web.Request) -> web.Response:
        return json_response({"changed": self.step()})
