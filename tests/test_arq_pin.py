"""worker/queue.py re-implements ARQ's enqueue in Lua and filters its job pickup, which rely on
ARQ 0.28's internals: this pins the version and the shape of what is used, so that an ARQ
upgrade fails here first, naming what to check, rather than somewhere in a worker."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path
from typing import Any

import arq.constants as arq_constants
from arq import VERSION as INSTALLED_ARQ
from arq.connections import ArqRedis
from arq.jobs import deserialize_job_raw, serialize_job
from arq.worker import Worker

from tests.kit import write_config
from worker import queue
from worker.queue import ARQ_VERSION, Job, JobSpec, enqueue_jobs
from worker.settings import make_worker

ROOT = Path(__file__).resolve().parent.parent


def test_the_arq_in_use_is_the_one_pinned_and_the_one_worker_queue_was_written_for() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in dependencies if d.replace(" ", "").startswith("arq==")]
    assert pin.replace(" ", "") == f"arq=={ARQ_VERSION}"
    assert INSTALLED_ARQ == ARQ_VERSION


def test_the_key_names_used_are_arqs() -> None:
    assert arq_constants.job_key_prefix == "arq:job:"
    assert arq_constants.result_key_prefix == "arq:result:"
    assert arq_constants.in_progress_key_prefix == "arq:in-progress:"
    assert arq_constants.default_queue_name == "arq:queue"
    assert arq_constants.expires_extra_ms == 86_400_000
    # worker/queue.py takes them from ARQ, not from a copy
    assert queue.job_key_prefix is arq_constants.job_key_prefix
    assert queue.in_progress_key_prefix is arq_constants.in_progress_key_prefix


def test_serialize_job_has_the_signature_and_the_format_enqueue_jobs_relies_on() -> None:
    params = inspect.signature(serialize_job).parameters
    assert list(params) == ["function_name", "args", "kwargs", "job_try", "enqueue_time_ms", "serializer"]
    assert params["serializer"].kind is inspect.Parameter.KEYWORD_ONLY
    payload = serialize_job("deliver", (b"{}", "hook", 0), {}, None, 1_700_000_000_000)
    assert deserialize_job_raw(payload) == ("deliver", (b"{}", "hook", 0), {}, None, 1_700_000_000_000)


def test_enqueue_job_writes_what_the_enqueue_script_writes() -> None:
    """The script copies enqueue_job: refuse an id with a job or a result key, else PSETEX the
    job key (expiry: its delay + expires_extra_ms) and ZADD the id to the queue by score."""
    source = inspect.getsource(ArqRedis.enqueue_job)
    for name in ("job_key_prefix", "result_key_prefix", "expires_extra_ms", "psetex", "zadd", "serialize_job",
                 "self.job_serializer", "self.default_queue_name"):
        assert name in source, name
    params = inspect.signature(ArqRedis.enqueue_job).parameters
    assert {"_job_id", "_defer_by", "_expires"} <= set(params)  # what enqueue_delivery passes


def test_the_pickup_wraps_the_start_jobs_arq_calls() -> None:
    start_jobs = Worker.start_jobs
    assert inspect.iscoroutinefunction(start_jobs)
    assert list(inspect.signature(start_jobs).parameters) == ["self", "job_ids"]
    source = inspect.getsource(start_jobs)
    assert "in_progress_key_prefix" in source and "watch" in source  # what `not_running` checks ahead of it
    assert "self.start_jobs(" in inspect.getsource(Worker._poll_iteration)  # called through the instance
    assert "self.tasks" in inspect.getsource(Worker.__init__)  # the job tasks `_running_here` reads


async def test_the_pool_has_the_attributes_enqueue_jobs_reads(arq: ArqRedis) -> None:
    assert isinstance(arq.expires_extra_ms, int)
    assert arq.default_queue_name == arq_constants.default_queue_name
    assert arq.job_serializer is None or callable(arq.job_serializer)
    assert await enqueue_jobs(arq, [JobSpec(Job.POLL_SCAN.value, "pin")]) == 1
    (job,) = await arq.queued_jobs()
    assert (job.function, job.job_id) == ("poll_scan", "pin")


def test_every_job_name_is_a_function_of_the_worker(tmp_path: Path, redis_url: str) -> None:
    config = write_config(tmp_path / "statehook.toml", redis_url=redis_url, providers={}, destinations={}, routes=[])
    worker: Any = make_worker(config, handle_signals=False, burst=True)
    assert {j.value for j in Job} <= set(worker.functions)
    assert all(isinstance(name, str) and type(name) is str for name in worker.functions)
