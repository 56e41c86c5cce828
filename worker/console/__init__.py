"""The operator console: server-rendered pages at /ui of `statehook api` (same process, same
port). docs/console.md describes the pages, the sign-in and what a session is.

`mount_console(app)` adds it to the API's app (worker/api.py); the pages read and operate
through the same store objects and functions as the API and the CLI.
"""

from __future__ import annotations

from worker.console.app import console_app, mount_console

__all__ = ["console_app", "mount_console"]
