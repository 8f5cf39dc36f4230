"""What every bench shares: figures, the child-process protocol, a project on disk, bulk
seeding, stage timers on the engine, a discarding transport, the SMTP sink process and
peak-RSS measurement."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from importlib import resources
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# A Tuesday at noon UTC: inside every example stream's send window.
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


# -- figures --------------------------------------------------------------------------


@dataclass
class Figure:
    """One line of the results table.

    ``status``: PASS / MISS against a target, INFO for a figure without one (a
    breakdown, a ceiling), SKIP when the bench could not run here, ERROR when it broke.
    """

    bench: str
    name: str
    value: float | None
    unit: str = ""
    reference: str = ""  # the ceiling or target it is compared with, as text
    status: str = "INFO"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def skip(bench: str, name: str, why: str) -> Figure:
    return Figure(bench, name, None, status="SKIP", note=why)


def child_main(
    run: Callable[[argparse.Namespace], Awaitable[list[Figure]]],
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Entry point of a bench module run as a child: figures go to ``--out`` as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", type=Path, default=None)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args()
    os.environ.pop("NURTURED_DATABASE_URL", None)
    # Warnings (e.g. inbound mail matching no lead) would flood the progress output.
    logging.disable(logging.WARNING)
    figures = asyncio.run(run(args))
    args.out.write_text(json.dumps([f.to_dict() for f in figures], indent=1))


def log(message: str) -> None:
    """Progress for the person watching (stderr; stdout is the table's)."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


# -- a project on disk ----------------------------------------------------------------

CONFIG = """\
[database]
url = "sqlite://nurtured.db"

[mail]
transport = "{transport}"
outbox = "outbox"

[mail.smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
pool_size = {pool_size}
timeout = "30s"

[sender]
from = "Acme Analytics <hello@acme.example>"
reply_to = "replies@acme.example"
unsubscribe_mailto = "unsubscribe@acme.example"

[sending]
rate_limit = {rate_limit}
timezone = "UTC"
window = {{ hours = "00:00-24:00", days = ["everyday"] }}
batch_size = {batch_size}
retry = {{ max_attempts = 5, backoff = "15m" }}

[tracking]
base_url = "http://127.0.0.1:8080"
secret_env = "NURTURED_BENCH_SECRET"
"""


def write_project(
    root: Path,
    *,
    transport: str = "smtp",
    port: int = 25,
    pool_size: int = 8,
    rate_limit: float = 1_000_000,
    batch_size: int = 500,
) -> Path:
    """The example project of ``nurtured init`` (its streams and templates, which are
    realistic in size: a layout, tracked links, a text footer) with a config for benches:
    every hour of every day is a send window, so everything seeded as due is sent."""
    scaffold = resources.files("nurtured") / "scaffold"
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("streams", "templates"):
        with resources.as_file(scaffold / sub) as source:
            shutil.copytree(source, root / sub, dirs_exist_ok=True)
    # Steps' own windows go too: the engine checks each email's window when it is about
    # to go, and a seeded due lead outside its step's window would wait, not be sent.
    for stream in (root / "streams").glob("*.toml"):
        lines = stream.read_text().splitlines(keepends=True)
        stream.write_text("".join(line for line in lines if not line.startswith("window =")))
    config = root / "config.toml"
    config.write_text(
        CONFIG.format(
            transport=transport,
            port=port,
            pool_size=pool_size,
            rate_limit=rate_limit,
            batch_size=batch_size,
        )
    )
    os.environ.setdefault("NURTURED_BENCH_SECRET", "bench-secret-" + "x" * 32)
    return config


@contextlib.contextmanager
def workdir(prefix: str, keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"nurtured-bench-{prefix}-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def db_path(config: Path) -> Path:
    return config.parent / "nurtured.db"


async def create_schema(config: Path) -> None:
    """Run the migrations once on an empty database (the app's own path to a schema)."""
    from nurtured.app import load_app
    from nurtured.db import database

    app = load_app(config)
    async with database(app.settings.database.url):
        pass


# -- bulk seeding ---------------------------------------------------------------------

FIRST = ("Ada", "Maria", "James", "Yuki", "Lena", "Omar", "Chen", "Sofia", "Noah", "Ines")
LAST = ("Keller", "Okafor", "Tanaka", "Novak", "Haddad", "Wei", "Rossi", "Berg", "Silva")
TITLES = ("Head of Revenue Operations", "VP Finance", "IT Director", "Data Analyst", "CFO")
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "")


def stamp(moment: datetime) -> str:
    """A datetime the way Tortoise stores it in SQLite (so range scans compare right)."""
    return str(moment.astimezone(UTC).replace(microsecond=0))


@dataclass
class Seeded:
    leads: int
    due: int
    due_ids: list[int]
    seconds: float


def seed(
    config: Path,
    *,
    leads: int,
    due: int,
    now: datetime = NOW,
    history: bool = False,
    rng_seed: int = 5,
) -> Seeded:
    """Insert ``leads`` leads with one active enrollment each straight into SQLite, in
    one transaction (far faster than the ORM; the schema must exist). ``due`` of them,
    picked at random, are due at ``now``; the rest fall due over the next 30 days.

    Half are in product-a, half in product-b. With ``history`` every lead already got
    its stream's first email (a sent delivery) and waits at step 1, so the delivery
    table and the per-lead "received" reads are as large as in a running system.
    """
    from nurtured.app import load_app

    app = load_app(config)
    streams = [app.catalog.stream("product-a"), app.catalog.stream("product-b")]
    rng = random.Random(rng_seed)
    due_set = set(rng.sample(range(leads), due))
    started = time.perf_counter()
    created = stamp(now - timedelta(days=10))
    sent = stamp(now - timedelta(days=3))
    conn = sqlite3.connect(db_path(config), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # seeding only; the bench uses the app's
        conn.execute("BEGIN")
        companies = max(1, leads // 10)
        conn.executemany(
            "INSERT INTO company (id, name, domain, size, industry, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                (i + 1, f"Company {i}", f"company{i}.example", "50-200", "Logistics", created)
                for i in range(companies)
            ),
        )

        def lead_rows() -> Iterator[tuple[Any, ...]]:
            for i in range(leads):
                interest = "product-a" if i % 2 == 0 else "product-b"
                yield (
                    i + 1,
                    f"lead{i}@example{i % 97}.com",
                    FIRST[i % len(FIRST)],
                    LAST[i % len(LAST)],
                    TITLES[i % len(TITLES)],
                    "webinar",
                    json.dumps([interest]),
                    ZONES[i % len(ZONES)],
                    json.dumps({"country": "DE"}),
                    "active",
                    "nurturing",
                    0,
                    created,
                    created,
                    (i % companies) + 1,
                )

        conn.executemany(
            "INSERT INTO lead (id, email, first_name, last_name, title, source, interests, "
            "timezone, extra, status, stage, score, created_at, updated_at, company_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            lead_rows(),
        )

        def due_at(i: int) -> str:
            if i in due_set:
                return stamp(now - timedelta(seconds=rng.randrange(3600)))
            return stamp(now + timedelta(seconds=rng.randrange(60, 30 * 86400)))

        position = 1 if history else 0
        conn.executemany(
            "INSERT INTO enrollment (id, active_lead, stream_id, state, position, next_due_at, "
            "lease, content_version, entered_at, left_at, reason, lead_id) "
            "VALUES (?, ?, ?, 'active', ?, ?, NULL, ?, ?, NULL, '', ?)",
            (
                (
                    i + 1,
                    i + 1,
                    streams[i % 2].id,
                    position,
                    due_at(i),
                    streams[i % 2].content_version,
                    created,
                    i + 1,
                )
                for i in range(leads)
            ),
        )
        if history:
            conn.executemany(
                "INSERT INTO delivery (id, content_id, stream_id, step_index, token, "
                "message_id, subject, status, attempts, claimed_at, sent_at, retry_at, error, "
                "lead_id, variant) "
                "VALUES (?, ?, ?, 0, ?, ?, 'Welcome', 'sent', 1, ?, ?, NULL, '', ?, '')",
                (
                    (
                        i + 1,
                        streams[i % 2].steps[0].content,
                        streams[i % 2].id,
                        f"seed{i:018d}",
                        f"<seed{i:018d}@acme.example>",
                        sent,
                        sent,
                        i + 1,
                    )
                    for i in range(leads)
                ),
            )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return Seeded(leads, due, sorted(i + 1 for i in due_set), time.perf_counter() - started)


# -- timing the engine's stages -------------------------------------------------------

STAGES = ("lease", "reads+plan", "render", "claim", "send", "record", "save")


@dataclass
class StageTimes:
    """Wall time per stage of Engine.process_batch, summed over batches."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds
        self.calls[stage] += 1
        self.samples[stage].append(seconds)

    def stages(self) -> dict[str, float]:
        """Every stage, with reads+plan as what preparing a batch (Engine._prepare) spent
        outside lease, render and claim, and send as what finishing a batch
        (Engine._finish: from its emails being queued to its outcomes saved) spent outside
        record and save."""
        out = {s: self.seconds.get(s, 0.0) for s in STAGES if s not in ("reads+plan", "send")}
        inside = out["lease"] + out["render"] + out["claim"]
        out["reads+plan"] = max(0.0, self.seconds.get("prepare", 0.0) - inside)
        after = out["record"] + out["save"]
        out["send"] = max(0.0, self.seconds.get("finish", 0.0) - after)
        return {s: out[s] for s in STAGES}


def instrument(times: StageTimes) -> Callable[[], None]:
    """Wrap the Engine's stage methods (and building each message's bytes, which happens
    inside "send") with timers; returns a function that undoes it."""
    from nurtured.engine import Engine
    from nurtured.mailer import SmtpTransport

    patched: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, attr: str, stage: str) -> None:
        original = getattr(owner, attr)
        if asyncio.iscoroutinefunction(original):

            @functools.wraps(original)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    times.add(stage, time.perf_counter() - started)

            setattr(owner, attr, timed_async)
        else:

            @functools.wraps(original)
            def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    times.add(stage, time.perf_counter() - started)

            setattr(owner, attr, timed)
        patched.append((owner, attr, original))

    import nurtured.engine as engine_module

    # Where each stage lives: an Engine method, or (since outcomes.py split off) a
    # function the engine module imported. The first that exists is timed; a stage found
    # nowhere is left out, and its time shows up in "reads+plan" (the remainder).
    for stage, places in (
        ("batch", [(Engine, "process_batch")]),
        ("prepare", [(Engine, "_prepare")]),
        ("lease", [(Engine, "_lease_due")]),
        ("render", [(Engine, "_render")]),
        ("claim", [(Engine, "_claim")]),
        ("finish", [(Engine, "_finish")]),
        ("record", [(engine_module, "record")]),
        ("save", [(engine_module, "save")]),
        ("send: build MIME", [(Engine, "_message")]),
        ("send: SMTP transaction", [(SmtpTransport, "_transact")]),
    ):
        for owner, attr in places:
            if hasattr(owner, attr):
                wrap(owner, attr, stage)
                break

    def undo() -> None:
        for owner, attr, original in reversed(patched):
            setattr(owner, attr, original)

    return undo


def time_functions(
    module: Any, names: dict[str, str] | Sequence[str], times: StageTimes
) -> Callable[[], None]:
    """Time calls of ``module``'s functions ``names`` (those it has) into ``times`` under
    their own names; returns a function that undoes it. Only for a module that looks its
    helpers up as globals at call time."""
    patched: list[tuple[str, Any]] = []
    for name in names:
        original = getattr(module, name, None)
        if original is None:
            continue
        if asyncio.iscoroutinefunction(original):

            async def timed_async(*a: Any, _f: Any = original, _n: str = name, **k: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await _f(*a, **k)
                finally:
                    times.add(_n, time.perf_counter() - started)

            setattr(module, name, timed_async)
        else:

            def timed(*a: Any, _f: Any = original, _n: str = name, **k: Any) -> Any:
                started = time.perf_counter()
                try:
                    return _f(*a, **k)
                finally:
                    times.add(_n, time.perf_counter() - started)

            setattr(module, name, timed)
        patched.append((name, original))

    def undo() -> None:
        for name, original in patched:
            setattr(module, name, original)

    return undo


class DiscardTransport:
    """A Transport (nurtured.mailer's protocol) that serialises each message exactly as
    SmtpTransport does (an EmailMessage; bytes are taken as they are), then drops it:
    the engine's cost without any mail server."""

    def __init__(self) -> None:
        self.sent = 0
        self.bytes = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(
        self, message: EmailMessage | bytes, *, sender: str, recipients: Sequence[str]
    ) -> None:
        data = message if isinstance(message, bytes) else message.as_bytes(policy=policy.SMTP)
        self.bytes += len(data)
        self.sent += 1


# -- processes ------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Measured:
    returncode: int
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str


def run_measured(
    cmd: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Measured:
    """Run ``cmd`` to completion; wall time and the peak RSS of that one child
    (os.wait4 gives the rusage of exactly that process)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)  # noqa: S603
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            proc.returncode,
            seconds,
            usage.ru_maxrss / 1024,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NURTURED_DATABASE_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("NURTURED_BENCH_SECRET", "bench-secret-" + "x" * 32)
    return env


def start_server(
    module: str, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], int]:
    """Run ``python -m module args`` and wait for its ``ready <port>`` line."""
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env or bench_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        proc.kill()
        raise RuntimeError(f"{module} {' '.join(args)} did not start: {line}")
    return proc, int(line[1])


class Sink:
    """The discarding aiosmtpd sink (bench/sink.py) in a process of its own."""

    def __init__(self) -> None:
        self.proc, self.port = start_server("bench.sink", "--port", "0")

    def count(self) -> tuple[int, int, int]:
        """(messages, bytes, connections) the sink has accepted so far."""
        assert self.proc.stdout is not None
        self.proc.send_signal(signal.SIGUSR1)
        _, messages, size, connections = self.proc.stdout.readline().split()
        return int(messages), int(size), int(connections)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def profiled(
    path: Path | None, *, whole_thread: bool = False
) -> contextlib.AbstractContextManager[Any]:
    """pyinstrument around a block when ``path`` is given and pyinstrument is installed;
    the text report goes to ``path``. ``whole_thread``: everything the event loop runs
    (a server), not only the awaiting task."""
    if path is None:
        return contextlib.nullcontext()
    try:
        from pyinstrument import Profiler
    except ImportError:
        log("pyinstrument is not installed (pip install pyinstrument): no profile")
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def run() -> Iterator[None]:
        profiler = Profiler(async_mode="disabled" if whole_thread else "enabled")
        profiler.start()
        try:
            yield
        finally:
            profiler.stop()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
            log(f"profile written to {path}")

    return run()


def dedent(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


async def until(done: Callable[[], bool], deadline: float, step: float = 0.05) -> bool:
    """Poll ``done`` every ``step`` seconds until it holds (True) or ``time.monotonic()``
    passes ``deadline`` (False)."""
    while not done():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True
