"""The chaos run, end to end (`python -m chaos`, `make chaos`).

In this process: the simulator (all four providers), the webhook, Slack and SMTP
receivers, the stream of state changes and its ground-truth log. Outside it: redis-server
processes (simulator/redisctl.py), two `statehook run` workers and one `statehook api`
(its /healthz sampled every second), each with a generated config file and its secrets in
the environment. No supervisor.

Two stages, because a plain Redis and a Sentinel-managed one are two client paths:

1. **plain** (`redis://`, one redis-server with AOF, appendfsync everysec): kill -9 of the
   worker with polls in flight, of the one with deliveries in flight, of the dispatcher
   holding pending outbox entries (each followed by a new worker: the operator's
   replacement, not a restart of the killed one); then Redis kill -9 restarted from its
   AOF, Redis stopped 60 s (port refused), Redis SIGSTOP 20 s, FLUSHALL.
2. **sentinel** (`redis+sentinel://`, a master, a replica, three sentinels): the stage's
   own workers baseline every resource, then kill -9 of the master (a failover).

Between the two the stream pauses until every change is delivered (at most
`stage_settle`), the plain stage's processes get SIGTERM, and the sentinel stage's take
new baselines: a change is never made while no worker could see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from redis import Redis

from chaos import faults
from chaos.fleet import Fleet, StatehookProc
from chaos.ground_truth import ChangeStream, GroundTruth
from chaos.receivers import MailSink, WebhookSink, slack_deliveries
from chaos.report import RunData, print_summary, report_core
from chaos.score import Delivery, FaultRecord, Score, score
from chaos.sim import RecordingSimulator, Target, make_targets
from chaos.stack import Endpoints, Secrets, worker_env, write_config
from simulator.redisctl import RedisProcess, SentinelTopology, free_port
from simulator.slack import SlackStandIn

__all__ = ["Run", "Timings", "run_chaos"]

WORKERS = 2


@dataclass(frozen=True)
class Timings:
    """Every duration of the run, in seconds. The defaults are `make chaos`; `quick()` is
    for developing the harness (shorter outages: not the issue's faults)."""

    interval: float = 2.0
    """every watch's poll interval"""
    per_provider: int = 20
    change_every: float = 0.4
    hold_min: float = 7.0
    """≥ 3 poll intervals, and more than DETECT_BEFORE + DETECT_AFTER (chaos/score.py)"""
    hold_max: float = 14.0
    hold_after: float = 8.0
    steady: float = 10.0
    takeover_budget: float = 30.0
    """issue 14: a dead worker's polls and deliveries are taken over within 30 s"""
    after_worker_fault: float = 35.0
    redis_restart_down: float = 2.0
    redis_down: float = 60.0
    redis_pause: float = 20.0
    after_redis_fault: float = 25.0
    flush_quiet: float = 8.0
    flush_window: float = 10.0
    flush_flips: int = 2
    stage_settle: float = 20.0
    settle_min: float = 10.0
    settle_max: float = 45.0
    baseline_timeout: float = 60.0

    @classmethod
    def quick(cls) -> Timings:
        return replace(cls(), per_provider=8, redis_down=10.0, redis_pause=5.0, after_redis_fault=15.0,
                       steady=5.0, settle_max=30.0)


@dataclass
class Run:
    timings: Timings
    workdir: Path
    sim: RecordingSimulator
    targets: list[Target]
    ids: dict[str, Any]
    stream: ChangeStream
    truth: GroundTruth
    hook: WebhookSink
    slack: SlackStandIn
    mail: MailSink
    secrets: Secrets
    fleet: Fleet
    redis: RedisProcess | SentinelTopology
    api_port: int
    stage: str = "plain"
    t0: float = field(default_factory=time.time)
    faults: list[FaultRecord] = field(default_factory=list)
    healthz: list[tuple[float, int]] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)

    def log(self, message: str) -> None:
        print(f"[+{time.time() - self.t0:6.1f}s] {self.scrub(message)}", flush=True)

    def scrub(self, text: str) -> str:
        for value in self.secrets.values():
            text = text.replace(value, "***")
        return text

    def redis_client(self) -> Redis:
        if isinstance(self.redis, SentinelTopology):
            return self.redis.current_master().client()
        return self.redis.client()

    def background(self, coro: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(asyncio.create_task(coro))

    def deliveries(self) -> list[Delivery]:
        return [*self.hook.deliveries, *slack_deliveries(self.slack), *self.mail.deliveries()]

    def data(self) -> RunData:
        return RunData(
            t0=self.t0, end=time.time(), changes=self.truth.changes(), deliveries=self.deliveries(),
            faults=list(self.faults), polls=list(self.sim.polls),
            worker_exits=[f"{p.name} (code {p.exit_code})" for p in self.fleet.exits()],
            healthz=list(self.healthz), rkeys={t.rkey: t.provider for t in self.targets},
        )

    def score(self) -> Score:
        return score(self.truth.changes(), self.deliveries(), self.faults, self.sim.polls,
                     len(self.fleet.exits()))


async def _monitor(run: Run, stop: asyncio.Event) -> None:
    """Report every statehook process that exits by itself, as it happens."""
    while not stop.is_set():
        for p in run.fleet.reap():
            run.log(f"{p.name} ({p.role}, pid {p.pid}) exited by itself with code {p.exit_code}: "
                    f"{p.last_log_line()[:200]}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)


async def _sample_healthz(run: Run, stop: asyncio.Event) -> None:
    url = f"http://127.0.0.1:{run.api_port}/healthz"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while not stop.is_set():
            at = time.time()
            try:
                async with session.get(url) as response:
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            run.healthz.append((at, status))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, 1.0 - (time.time() - at)))


def _write_stage_config(run: Run, stage: str, redis_url: str) -> Path:
    path = run.workdir / f"statehook-{stage}.toml"
    endpoints = Endpoints(run.sim.base_url, run.hook.url, run.mail.port, run.api_port)
    write_config(path, redis_url=redis_url, endpoints=endpoints, ids=run.ids, interval=run.timings.interval)
    run.fleet.env = worker_env(path, run.secrets)
    return path


async def _start_stage(run: Run, stage: str, redis_url: str) -> None:
    run.stage = stage
    _write_stage_config(run, stage, redis_url)
    since = time.time()
    for _ in range(WORKERS):
        run.fleet.spawn_worker(stage)
    run.fleet.spawn_api(stage)
    run.log(f"stage {stage}: {WORKERS} workers and the API started against {redis_url}")
    run.stages.append({"stage": stage, "started_s": round(since - run.t0, 1)})
    await _baselines(run, since)
    run.stream.phase = f"{stage}-steady"
    run.stream.paused = False
    run.stream.probe()


async def _baselines(run: Run, since: float) -> None:
    """Until every resource was polled at least once since `since` (its baseline), and two
    intervals more for the commits; at most `baseline_timeout`."""
    wanted = {t.rkey for t in run.targets}
    by_provider = Counter(t.provider for t in run.targets)
    deadline = time.monotonic() + run.timings.baseline_timeout
    while time.monotonic() < deadline:
        seen: set[str] = set()
        whole: set[str] = set()
        for p in run.sim.polls:
            if p.at >= since:
                if p.rkeys is None:
                    whole.add(p.provider)
                else:
                    seen.update(p.rkeys)
        missing = {k for k in wanted - seen if k.split(":", 1)[0] not in whole}
        if not missing:
            await asyncio.sleep(2 * run.timings.interval)
            run.log(f"baselines taken ({dict(by_provider)})")
            return
        await asyncio.sleep(0.5)
    run.log(f"baselines: {len(missing)} resources never polled within {run.timings.baseline_timeout:g}s; going on")


async def _wait_delivered(run: Run, at_most: float, at_least: float = 0.0) -> None:
    """Until every change made so far is observed (or lost with the data), between
    `at_least` and `at_most` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < at_most:
        if time.monotonic() - started >= at_least and run.score().missed == 0:
            return
        await asyncio.sleep(2.0)


def _close_window(run: Run, name: str) -> None:
    for w in reversed(run.stream.windows):
        if w.name == name and w.end is None:
            run.stream.close_window(w)
            return


async def _worker_faults(run: Run) -> None:
    t = run.timings
    for name, fault in (("worker-kill-polls", faults.worker_kill_polls),
                        ("worker-kill-deliveries", faults.worker_kill_deliveries),
                        ("worker-kill-dispatcher", faults.worker_kill_dispatcher)):
        run.stream.phase = name
        record = await fault(run)
        run.faults.append(record)
        await asyncio.sleep(max(0.0, t.takeover_budget - (time.time() - record.started)))
        _close_window(run, name)
        await asyncio.sleep(max(0.0, t.after_worker_fault - (time.time() - record.started)))


async def _redis_faults(run: Run) -> None:
    t = run.timings
    steps: list[tuple[str, Coroutine[Any, Any, FaultRecord]]] = [
        ("redis-kill9-aof", faults.redis_kill9_aof_restart(run, t.redis_restart_down)),
        (f"redis-down-{t.redis_down:g}s", faults.redis_down(run, t.redis_down)),
        (f"redis-sigstop-{t.redis_pause:g}s", faults.redis_sigstop(run, t.redis_pause)),
        ("flushall", faults.flushall(run, t.flush_quiet, t.flush_window, t.flush_flips)),
    ]
    for name, step in steps:
        if name != "flushall":
            run.stream.phase = name
        run.faults.append(await step)
        await asyncio.sleep(t.after_redis_fault)


async def _switch_to_sentinel(run: Run) -> None:
    t = run.timings
    run.stream.paused = True
    run.stream.phase = "stage-switch"
    run.log(f"stage plain ends: no changes until every one is delivered (at most {t.stage_settle:g}s)")
    await _wait_delivered(run, t.stage_settle)
    run.fleet.reap()
    live = [p for p in run.fleet.procs if p.alive()]
    ended = time.time()  # what comes after is the next fleet's doing, not this stage's recovery
    run.faults = [f if f.horizon is not None else replace(f, horizon=ended) for f in run.faults]
    await asyncio.to_thread(run.fleet.stop, live)
    took = {p.name: p.stop_took_s for p in live}
    run.log(f"SIGTERM to the plain stage's processes: stopped in {took}")
    assert isinstance(run.redis, RedisProcess)
    await asyncio.to_thread(run.redis.cleanup)
    topo = SentinelTopology(down_after_ms=1500, failover_timeout_ms=10000)
    await asyncio.to_thread(topo.start)
    run.redis = topo
    run.log(f"sentinel topology up: master {topo.master.port}, replica {topo.replica.port}, "
            f"sentinels {[s.port for s in topo.sentinels]}")
    await _start_stage(run, "sentinel", topo.url)


async def _stage_plain(run: Run) -> None:
    assert isinstance(run.redis, RedisProcess)
    await asyncio.to_thread(run.redis.start)
    run.log(f"redis-server with AOF on port {run.redis.port}")
    await _start_stage(run, "plain", run.redis.url)
    await asyncio.sleep(run.timings.steady)
    await _worker_faults(run)
    await _redis_faults(run)


async def _stage_sentinel(run: Run) -> None:
    await asyncio.sleep(run.timings.steady)
    run.stream.phase = "sentinel-failover"
    run.faults.append(await faults.sentinel_failover(run))
    await asyncio.sleep(run.timings.after_redis_fault)


async def run_chaos(timings: Timings, *, report_path: Path, strict: bool, seed: int = 14) -> int:
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="statehook-chaos-"))
    rng = random.Random(seed)
    sim, targets, ids = make_targets(timings.per_provider)
    await sim.start("127.0.0.1", 0)
    slack = SlackStandIn()
    await slack.start()
    secrets_ = Secrets.generate(slack.webhook_url("T0CHAOS/B0CHAOS/chaos"))
    hook = WebhookSink(secrets_.webhook_secret)
    await hook.start()
    mail = MailSink()
    mail.start()
    truth = GroundTruth(workdir / "ground-truth.jsonl")
    stream = ChangeStream(targets, truth, rng, timings.change_every, timings.hold_min, timings.hold_max,
                          timings.hold_after)
    run = Run(timings, workdir, sim, targets, ids, stream, truth, hook, slack, mail, secrets_,
              Fleet(workdir, {}), RedisProcess(appendonly=True, workdir=workdir / "redis"), free_port(), t0=started)
    print(f"chaos: work directory {workdir} (worker logs, ground-truth.jsonl); simulator {sim.base_url}", flush=True)
    stop = asyncio.Event()
    helpers = [asyncio.create_task(stream.run(stop)), asyncio.create_task(_monitor(run, stop)),
               asyncio.create_task(_sample_healthz(run, stop))]
    completed = False
    try:
        await _stage_plain(run)
        await _switch_to_sentinel(run)
        await _stage_sentinel(run)
        run.stream.paused = True
        run.stream.phase = "settle"
        run.log(f"no more changes: settling ({timings.settle_min:g}–{timings.settle_max:g}s)")
        await _wait_delivered(run, timings.settle_max, timings.settle_min)
        completed = True
    finally:
        stop.set()
        await asyncio.gather(*helpers, return_exceptions=True)
        run.fleet.reap()
        await asyncio.to_thread(run.fleet.stop_all)
        for task in run.tasks:
            task.cancel()
        await asyncio.gather(*run.tasks, return_exceptions=True)
        if isinstance(run.redis, SentinelTopology):
            await asyncio.to_thread(run.redis.stop)
        else:
            await asyncio.to_thread(run.redis.cleanup)
        await hook.stop()
        await slack.stop()
        mail.stop()
        await sim.stop()
    data = run.data()
    await asyncio.to_thread(data.save, run.workdir / "run-data.json")
    result = data.score()
    duration = time.time() - started
    report = build_report(run, data, result, duration)
    await asyncio.to_thread(_write, report_path, json.dumps(report, indent=2))
    print_summary(data, result, duration, report_path)
    print(result.line(), flush=True)
    if not completed:
        return 2
    return 1 if strict and result.failed_targets() else 0


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _proc_row(run: Run, p: StatehookProc) -> dict[str, Any]:
    return {"name": p.name, "role": p.role, "stage": p.stage, "pid": p.pid,
            "started_s": round(p.started - run.t0, 1),
            "ended_s": None if p.ended is None else round(p.ended - run.t0, 1),
            "cause": p.cause, "exit_code": p.exit_code, "stop_took_s": p.stop_took_s,
            "last_log_line": run.scrub(p.last_log_line()[:300]) if p.cause == "exited" else None,
            "log": str(p.log_path)}


def build_report(run: Run, data: RunData, result: Score, duration: float) -> dict[str, Any]:
    """The JSON report: `chaos.report.report_core` and what only a live run knows."""
    return {
        **report_core(data, result),
        "duration_s": round(duration, 1),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(run.t0)),
        "workdir": str(run.workdir),
        "timings": asdict(run.timings),
        "stages": run.stages,
        "receivers": {
            "receipts": dict(Counter(d.receiver for d in data.deliveries)),
            "webhook_bad_signatures": run.hook.bad_signatures,
            "webhook_id_header_mismatches": run.hook.id_mismatches,
            "webhook_abandoned": run.hook.abandoned,
            "slack_rejected": dict(Counter(error for _, _, error in run.slack.rejected)),
        },
        "poll_requests": dict(Counter(p.provider for p in run.sim.polls)),
        "processes": [_proc_row(run, p) for p in run.fleet.procs],
    }
