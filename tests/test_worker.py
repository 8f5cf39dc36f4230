"""Scale-out: the same send job run by an arq worker over this machine's Redis."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from nurtured.app import load_app
from nurtured.intake import make_input, upsert
from nurtured.models import Delivery, DeliveryStatus
from nurtured.worker import connect, enqueue_sends, make_worker
from tests.walk import MONDAY, config, write_project

REDIS = os.environ.get("NURTURED_TEST_REDIS", "redis://127.0.0.1:6379/15")


@pytest.fixture
async def redis_url() -> str:
    client = Redis.from_url(REDIS)
    try:
        await client.ping()
    except OSError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS}: {exc}")
    finally:
        await client.aclose()
    return REDIS


def arq_project(root: Path, port: int, redis_url: str, queue: str) -> Path:
    text = (
        config(port)
        + f"""
        [queue]
        backend = "arq"
        redis_url = "{redis_url}"
        queue_name = "{queue}"
        parallel = 3
    """
    )
    return write_project(root, port, **{"config.toml": text})


async def test_worker_jobs_send_each_due_email_exactly_once(
    tmp_path: Path, db: str, smtp_sink: Any, redis_url: str
) -> None:
    """Three send jobs drain 25 due leads side by side: 25 emails, none twice."""
    queue = f"nurtured-test-{secrets.token_hex(4)}"
    config_path = arq_project(tmp_path, smtp_sink.port, redis_url, queue)
    app = load_app(config_path)
    items = [make_input({"email": f"lead{i}@example.com", "interest": "a"}) for i in range(25)]
    await upsert(items, app.catalog, app.rules, MONDAY)

    redis = await connect(app.settings)
    try:
        assert await enqueue_sends(redis, app.settings, now=MONDAY) == 3
        assert await enqueue_sends(redis, app.settings, now=MONDAY) == 0  # already queued
        worker = make_worker(
            config_path,
            burst=True,
            open_database=False,
            clock=lambda: MONDAY,
            handle_signals=False,
        )
        try:
            await worker.main()
        finally:
            await worker.close()
        # The three send jobs (and a cron tick, if one fell due meanwhile: it reads the
        # fixed clock, so the next step is not due) all succeeded.
        assert worker.jobs_failed == 0
        assert worker.jobs_complete >= 3
    finally:
        await redis.aclose()

    rcpts = sorted(r for m in smtp_sink.messages for r in m.rcpt_tos)
    assert rcpts == sorted(f"lead{i}@example.com" for i in range(25))
    assert await Delivery.filter(status=DeliveryStatus.SENT).count() == 25


async def test_worker_refuses_to_start_on_a_broken_stream(tmp_path: Path, redis_url: str) -> None:
    from nurtured.exceptions import ConfigError

    config_path = arq_project(tmp_path, 2525, redis_url, "unused")
    (tmp_path / "streams" / "a.toml").write_text('id = "a"\nname = "A"\nsteps = 3\n')
    with pytest.raises(ConfigError, match=r"a\.toml"):
        make_worker(config_path)


def test_worker_command_prints_the_problem_and_exits_1(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from nurtured.cli import main

    config_path = arq_project(tmp_path, 2525, REDIS, "unused")
    (tmp_path / "streams" / "a.toml").write_text('id = "a"\nname = "A"\nsteps = 3\n')
    result = CliRunner().invoke(main, ["worker", "--burst", "--config", str(config_path)])
    assert result.exit_code == 1
    assert "a.toml: steps:" in result.output
