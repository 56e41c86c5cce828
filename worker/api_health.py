"""GET /healthz (Redis reachable and a fresh worker beat in the worker registry) and GET
/metrics (the Prometheus text of worker/metrics.py)."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from worker import api_models as models
from worker import metrics
from worker.api_http import RETRY_AFTER, answer, state_of
from worker.persistence import redis_down, redis_problem

__all__ = ["HEALTH_TIMEOUT", "healthz", "metrics_view"]

log = logging.getLogger("statehook.api")

HEALTH_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.Response:
    st = state_of(request)
    try:
        await asyncio.wait_for(st.redis.ping(), timeout=HEALTH_TIMEOUT)
        now = time.time()
        workers = await asyncio.wait_for(st.registry.beats(now), timeout=HEALTH_TIMEOUT)
    except Exception as exc:
        if redis_down(exc):
            st.redis_status.failed(exc)
            reason = f"redis unreachable: {redis_problem(exc)}"
        else:
            log.exception("healthz: reading the heartbeats failed")
            reason = f"health check failed: {type(exc).__name__}"
        return _unhealthy(models.HealthUnavailable(status="unavailable", reason=reason))
    beats = [models.WorkerBeat(worker=w.worker, age=round(w.age(now), 3), interval=w.interval, fresh=w.fresh(now))
             for w in workers]
    if not any(b.fresh for b in beats):
        if beats:
            newest = min(beats, key=lambda b: b.age)
            reason = f"no fresh worker heartbeat: the newest is {newest.age:.1f}s old (interval {newest.interval}s)"
        else:
            reason = "no worker heartbeat"
        return _unhealthy(models.HealthUnavailable(status="unavailable", reason=reason, workers=beats))
    return answer(models.Health(status="ok", redis="ok", workers=beats))


def _unhealthy(body: models.HealthUnavailable) -> web.Response:
    return answer(body, status=503, headers={"Retry-After": RETRY_AFTER}, exclude_none=True)


async def metrics_view(request: web.Request) -> web.Response:
    """The metrics read from Redis now; 503 (plain text, Retry-After) when Redis cannot
    serve: nothing here is process-local, and an empty exposition would read as zeros."""
    st = state_of(request)
    try:
        body = await metrics.render(st.redis)
    except Exception as exc:
        if not redis_down(exc):
            raise
        st.redis_status.failed(exc)
        return web.Response(status=503, text=f"# redis unavailable: {redis_problem(exc)}\n",
                            headers={"Retry-After": RETRY_AFTER})
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE_LATEST})
