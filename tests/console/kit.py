"""Building blocks of the console's tests: the API (with its console) on a free port, and a
client that keeps the session cookie, reads a page's CSRF token and posts forms."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from config import Config
from worker.api import start_api
from worker.console.state import CONSOLE, ConsoleState

TOKEN = "console-token-5f0e9d8c7b6a"
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


@dataclass
class Answer:
    status: int
    text: str
    headers: Any
    url: str


class ConsoleClient:
    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http

    async def get(self, path: str, *, follow: bool = True, **kwargs: Any) -> Answer:
        async with self.http.get(path, allow_redirects=follow, **kwargs) as resp:
            return Answer(resp.status, await resp.text(), resp.headers, str(resp.url))

    async def post(self, path: str, data: Any, *, csrf_from: str | None = "/ui/", follow: bool = False,
                   **kwargs: Any) -> Answer:
        """POST a form; with the CSRF token of the page `csrf_from` unless it is None."""
        if csrf_from is not None:
            data = [("csrf", await self.csrf(csrf_from)), *(data.items() if isinstance(data, dict) else data)]
        async with self.http.post(path, data=data, allow_redirects=follow, **kwargs) as resp:
            return Answer(resp.status, await resp.text(), resp.headers, str(resp.url))

    async def csrf(self, path: str) -> str:
        page = await self.get(path)
        found = _CSRF.search(page.text)
        assert found, f"no CSRF token on {path} ({page.status})"
        return found.group(1)

    async def sign_in(self, token: str = TOKEN) -> Answer:
        return await self.post("/ui/login", {"token": token, "next": "/ui/"}, csrf_from="/ui/login")

    def set_cookie(self, name: str, value: str) -> None:
        """The jar holds this one cookie (as a browser would send it)."""
        self.http.cookie_jar.clear()
        self.http.cookie_jar.update_cookies({name: value})

    def cookie(self, name: str) -> str | None:
        for c in self.http.cookie_jar:
            if c.key == name:
                return c.value
        return None


@contextlib.asynccontextmanager
async def serving_console(config: Config) -> AsyncIterator[tuple[str, ConsoleClient, ConsoleState]]:
    runner, url = await start_api(config, host="127.0.0.1", port=0)
    try:
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        async with aiohttp.ClientSession(base_url=url, cookie_jar=jar) as http:
            yield url, ConsoleClient(http), runner.app[CONSOLE]
    finally:
        await runner.cleanup()
