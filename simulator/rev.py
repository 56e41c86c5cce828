"""Rev's stand-in: transcription and caption orders in the seed's shape (002_*).

API (under `/rev`): `GET /api/v1/orders/{ordernum}`, `GET /api/v1/orders?page=N`
(`{total_count, results_per_page, page, orders}`, pages count from 0) and
`GET /api/v1/attachments/{id}/content`. Every API request needs
`Authorization: Rev <client_key>:<user_key>` (else 401, empty body) and an `Accept`
naming `application/json` (else 406 with `{code, message}`); an unknown order is a 404
with an empty body, as Rev answers.

Control (under `/_sim/rev`): `GET /orders`, `POST /orders` `{ordernum?, status?, kind?}`,
`POST /orders/{n}/status` `{status}`, `POST /orders/{n}/attachments` `{kind, name}`,
`POST /orders/{n}/comments` `{by, text}`, `DELETE /orders/{n}`.
"""

from __future__ import annotations

import copy
import hashlib
import random
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from simulator.core import SimProvider, json_response, read_json_object

__all__ = ["RevSim"]

OrderKind = Literal["transcription", "caption"]

FINDING = "Finding Transcriptionist"
TRANSCRIBING = "Transcribing"
CAPTIONING = "Captioning"
COMPLETE = "Complete"
CANCELLED = "Cancelled"
CLOSED = frozenset({"complete", "cancelled", "canceled"})
COMMENTERS = ("John S.", "Maria K.", "Rev Support")
COMMENTS = ("Please do it quickly", "Speaker names added", "Audio is faint after 03:10", "Rush requested")


class RevSim(SimProvider):
    name = "rev"

    def __init__(
        self,
        client_key: str = "sim-client-key",
        user_key: str = "sim-user-key",
        *,
        results_per_page: int = 25,
    ) -> None:
        self.client_key = client_key
        self.user_key = user_key
        self.authorization = f"Rev {client_key}:{user_key}"
        self.results_per_page = results_per_page
        self.orders: dict[str, dict[str, Any]] = {}
        self._counter = 0

    # ---- Python API --------------------------------------------------------------------

    def add_order(
        self, ordernum: str | None = None, *, status: str | None = None, kind: OrderKind = "transcription"
    ) -> str:
        """A new order with its media attachment; status defaults to Transcribing
        (Captioning for a caption order). Returns the order number."""
        self._counter += 1
        n = self._counter
        number = ordernum or f"{'TC' if kind == 'transcription' else 'CP'}{432431 + n}"
        if number in self.orders:
            raise ValueError(f"order {number} exists")
        order: dict[str, Any] = {
            "order_number": number,
            "client_ref": str(n),
            "po_number": "sampleponumber",
            "price": 56 + n % 7,
            "status": status or (TRANSCRIBING if kind == "transcription" else CAPTIONING),
        }
        if kind == "transcription":
            order["transcription"] = {"total_length_seconds": 300, "verbatim": True, "timestamps": False}
        else:
            order["caption"] = {"total_length_seconds": 300}
        order["attachments"] = []
        order["comments"] = []
        self.orders[number] = order
        self.add_attachment(number, "media", "VoiceRecording.mp3" if kind == "transcription" else "Video.mp4")
        return number

    def add_many(self, n: int, /) -> list[str]:
        """`n` orders, captions and transcriptions in turn (the registry's seeding hook)."""
        return [self.add_order(kind="caption" if i % 2 == 0 else "transcription") for i in range(n)]

    def set_status(self, ordernum: str, status: str) -> None:
        self.orders[ordernum]["status"] = status

    def reopen(self, ordernum: str, status: str = "In Progress") -> None:
        """A Complete order re-opened for quality control."""
        if self.orders[ordernum]["status"] != COMPLETE:
            raise ValueError(f"only a Complete order is re-opened, not {self.orders[ordernum]['status']}")
        self.orders[ordernum]["status"] = status

    def add_attachment(self, ordernum: str, kind: str, name: str, *, content_type: str | None = None) -> str:
        """Adds an attachment with a content link; returns its id."""
        order = self.orders[ordernum]
        seed = f"{ordernum}/{len(order['attachments'])}/{kind}/{name}"
        att_id = hashlib.blake2b(seed.encode(), digest_size=22).hexdigest().upper()[:43]
        link = {"rel": "content", "href": f"/api/v1/attachments/{att_id}/content"}
        if content_type:
            link["content-type"] = content_type
        order["attachments"].append({"kind": kind, "name": name, "id": att_id, "links": [link]})
        return att_id

    def add_comment(self, ordernum: str, by: str, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        self.orders[ordernum]["comments"].append({"by": by, "timestamp": stamp, "text": text})

    def remove(self, ordernum: str) -> None:
        del self.orders[ordernum]

    # ---- scripted progression ----------------------------------------------------------

    def step(self, rng: random.Random) -> list[str]:
        """One tick: Finding Transcriptionist → Transcribing → Complete with a transcript;
        Captioning → Complete with captions (sometimes a burned-in video); now and then a
        cancellation or a comment."""
        changed: list[str] = []
        for number, order in list(self.orders.items()):
            was = order["status"]
            if was.casefold() in CLOSED:
                continue
            roll = rng.random()
            if roll < 0.03:
                self.set_status(number, CANCELLED)
            elif was == FINDING and roll < 0.5:
                self.set_status(number, TRANSCRIBING)
            elif was != FINDING and roll < 0.35:
                self._complete(number, rng)
            if rng.random() < 0.08:
                self.add_comment(number, rng.choice(COMMENTERS), rng.choice(COMMENTS))
                changed.append(f"rev:order:{number} comment")
            if order["status"] != was:
                changed.append(f"rev:order:{number} {was} → {order['status']}")
        return changed

    def _complete(self, number: str, rng: random.Random) -> None:
        order = self.orders[number]
        kinds = {a["kind"] for a in order["attachments"]}
        if "caption" in order:
            if "caption" not in kinds:
                self.add_attachment(number, "caption", "Caption.srt")
                if rng.random() < 0.3:
                    self.add_attachment(number, "burnedin", "Caption.mp4", content_type="video/mp4")
        elif "transcript" not in kinds:
            self.add_attachment(number, "transcript", "Transcript.docx")
        self.set_status(number, COMPLETE)

    # ---- API routes --------------------------------------------------------------------

    def add_api_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/orders", self._list_orders)
        app.router.add_get("/api/v1/orders/{ordernum}", self._get_order)
        app.router.add_get("/api/v1/attachments/{att_id}/content", self._get_content)

    def _refusal(self, request: web.Request) -> web.Response | None:
        """Rev's checks, in its order: the keys (401, empty body), then the format."""
        if request.headers.get("Authorization") != self.authorization:
            return web.Response(status=401)
        accept = request.headers.get("Accept", "")
        if "application/json" not in accept:
            return json_response(
                {"code": 10002, "message": f"Unsupported Accept header {accept!r}: use application/json"},
                status=406,
            )
        return None

    def _render(self, request: web.Request, order: dict[str, Any]) -> dict[str, Any]:
        """The order as the API shows it: content links absolute, under this simulator."""
        out = copy.deepcopy(order)
        base = f"{request.scheme}://{request.host}/{self.name}"
        for att in out["attachments"]:
            for link in att["links"]:
                link["href"] = base + link["href"]
        return out

    async def _get_order(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        order = self.orders.get(request.match_info["ordernum"])
        if order is None:
            return web.Response(status=404)
        return json_response(self._render(request, order))

    async def _list_orders(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        try:
            page = int(request.query.get("page", "0"))
            per_page = int(request.query.get("results_per_page", str(self.results_per_page)))
            if page < 0 or per_page < 1:
                raise ValueError
        except ValueError:
            message = "page must be an integer ≥ 0 and results_per_page an integer ≥ 1"
            return json_response({"code": 10001, "message": message}, status=400)
        newest_first = list(reversed(self.orders.values()))
        chunk = newest_first[page * per_page : (page + 1) * per_page]
        return json_response(
            {
                "total_count": len(newest_first),
                "results_per_page": per_page,
                "page": page,
                "orders": [self._render(request, o) for o in chunk],
            }
        )

    async def _get_content(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.authorization:
            return web.Response(status=401)
        att_id = request.match_info["att_id"]
        for order in self.orders.values():
            for att in order["attachments"]:
                if att["id"] == att_id:
                    text = f"{att['kind']} {att['name']} of order {order['order_number']}\n"
                    return web.Response(text=text)
        return web.Response(status=404)

    # ---- control routes ----------------------------------------------------------------

    def add_control_routes(self, app: web.Application) -> None:
        app.router.add_get("/orders", self._ctl_list)
        app.router.add_post("/orders", self._ctl_add)
        app.router.add_post("/orders/{ordernum}/status", self._ctl_status)
        app.router.add_post("/orders/{ordernum}/attachments", self._ctl_attachment)
        app.router.add_post("/orders/{ordernum}/comments", self._ctl_comment)
        app.router.add_delete("/orders/{ordernum}", self._ctl_remove)

    async def _ctl_list(self, request: web.Request) -> web.Response:
        return json_response({n: o["status"] for n, o in self.orders.items()})

    async def _ctl_add(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        kind = data.get("kind", "transcription")
        if kind not in ("transcription", "caption"):
            return json_response({"detail": "kind must be transcription or caption"}, status=400)
        try:
            number = self.add_order(data.get("ordernum"), status=data.get("status"), kind=kind)
        except ValueError as exc:
            return json_response({"detail": str(exc)}, status=409)
        return json_response(self.orders[number], status=201)

    async def _ctl_status(self, request: web.Request) -> web.Response:
        number, data = request.match_info["ordernum"], await read_json_object(request)
        if number not in self.orders:
            return json_response({"detail": "unknown order"}, status=404)
        if not isinstance(data.get("status"), str):
            return json_response({"detail": "status (a string) is required"}, status=400)
        self.set_status(number, data["status"])
        return json_response(self.orders[number])

    async def _ctl_attachment(self, request: web.Request) -> web.Response:
        number, data = request.match_info["ordernum"], await read_json_object(request)
        if number not in self.orders:
            return json_response({"detail": "unknown order"}, status=404)
        kind, name = str(data.get("kind", "transcript")), str(data.get("name", "Transcript.docx"))
        att_id = self.add_attachment(number, kind, name)
        return json_response({"id": att_id}, status=201)

    async def _ctl_comment(self, request: web.Request) -> web.Response:
        number, data = request.match_info["ordernum"], await read_json_object(request)
        if number not in self.orders:
            return json_response({"detail": "unknown order"}, status=404)
        self.add_comment(number, str(data.get("by", "Rev Support")), str(data.get("text", "")))
        return json_response(self.orders[number]["comments"][-1], status=201)

    async def _ctl_remove(self, request: web.Request) -> web.Response:
        number = request.match_info["ordernum"]
        if number not in self.orders:
            return json_response({"detail": "unknown order"}, status=404)
        self.remove(number)
        return json_response({"removed": number})

