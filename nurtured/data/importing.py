"""``nurtured leads import``: read a CSV as Excel writes it, say truthfully what happened.

The encoding is UTF-8 (with or without a BOM), else cp1252 (Windows Excel), or what
``--encoding`` says; the delimiter is sniffed from the header (comma, semicolon, tab,
pipe) unless ``--delimiter`` says. A row that repeats an address names the line it
repeats and the fields it changed; a ``consent`` column is honoured as the API honours
it; a suppressed address is not enrolled; ``--dry-run`` runs it all in a transaction
that is rolled back. Bad rows never stop good ones: each is reported with its line.
"""

from __future__ import annotations

import codecs
import csv
from array import array
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tortoise.transactions import in_transaction

from nurtured.app import App
from nurtured.config_sections import Suppression
from nurtured.data.consent import CONSENT_ERROR, parse_consent
from nurtured.data.suppression import Gate
from nurtured.enrollment import Changes, leave
from nurtured.exceptions import LeadError
from nurtured.intake import CHUNK, ImportReport, LeadInput, make_input, upsert
from nurtured.models import CURRENT, Enrollment, EventKind, Lead, LeadStatus
from nurtured.scheduler import SendRules
from nurtured.streams import Catalog

DELIMITERS = ",;\t|"
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SAMPLE = 64 * 1024
NO_CONSENT = "no consent to email"


@dataclass(frozen=True)
class CsvFormat:
    encoding: str
    delimiter: str

    def describe(self) -> str:
        names = {"utf-8-sig": "UTF-8", "cp1252": "cp1252 (Windows)"}
        separator = DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))
        return f"read as {names.get(self.encoding, self.encoding)}, {separator}-separated"


def parse_delimiter(text: str) -> str:
    """``--delimiter``: one character, or comma / semicolon / tab / pipe by name."""
    names = {v: k for k, v in DELIMITER_NAMES.items()} | {"\\t": "\t"}
    value = names.get(text.strip().lower(), text)
    if len(value) != 1 or value in '"\r\n':
        raise LeadError(f"--delimiter: {text!r} is not one character (or comma, semicolon, tab)")
    return value


def detect_encoding(path: Path) -> str:
    """utf-8-sig when the whole file is UTF-8 (a BOM or not), else cp1252 if every byte is
    one; LeadError names the first byte neither reads, and ``--encoding``."""
    for encoding in ("utf-8-sig", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        offset = 0
        try:
            with path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    decoder.decode(block)
                    offset += len(block)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            bad = offset + exc.start
            continue
        return encoding
    with path.open("rb") as handle:
        line = handle.read(bad).count(b"\n") + 1
    raise LeadError(f"{path}:{line}: neither UTF-8 nor cp1252 (byte {bad}); name the file's "
                    "encoding with --encoding, e.g. --encoding latin-1")  # fmt: skip


def detect_delimiter(sample: str) -> str:
    """The sniffed delimiter of the header and first rows; else the one the header line has
    most of; else a comma."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def csv_format(path: Path, *, encoding: str | None = None, delimiter: str | None = None
               ) -> CsvFormat:  # fmt: skip
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise LeadError(f"--encoding: {encoding!r} is not an encoding Python knows") from None
    enc = encoding or detect_encoding(path)
    if delimiter is None:
        with path.open(newline="", encoding=enc, errors="replace") as handle:
            delimiter = detect_delimiter(handle.read(SAMPLE))
    return CsvFormat(enc, delimiter)


def read_csv(
    path: Path, *, source: str | None = None, fmt: CsvFormat | None = None,
    now: datetime | None = None,
) -> Iterator[tuple[int, LeadInput | LeadError]]:  # fmt: skip
    """(line, LeadInput or the error) for each data row; the line is where the row starts."""
    fmt = fmt or csv_format(path)
    with path.open(newline="", encoding=fmt.encoding, errors="replace") as handle:
        reader = csv.DictReader(handle, delimiter=fmt.delimiter)
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        if "email" not in fields:
            found = ", ".join(repr(f) for f in fields[:8]) or "none"
            raise LeadError(f"{path}: no 'email' column in the header line ({fmt.describe()};"
                            f" columns: {found}); --delimiter names the separator")  # fmt: skip
        reader.fieldnames = fields
        end = reader.line_num
        while True:
            start = end + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                end = reader.line_num
                yield start, LeadError(f"not readable as CSV: {exc}")
                continue
            end = reader.line_num
            if None in row:
                yield start, LeadError(f"more fields than the header has ({len(fields)})")
                continue
            try:
                yield start, make_input(_consent(row, now), source=source)
            except LeadError as exc:
                yield start, exc


def _consent(row: dict[str, str], now: datetime | None) -> dict[str, str]:
    """As the API: yes/no into the lead's fields with the time of the answer. An empty cell
    says nothing (a column filled for some rows only)."""
    value = (row.get("consent") or "").strip()
    if not value:
        row.pop("consent", None)
        return row
    answer = parse_consent(value)
    if answer is None:
        raise LeadError(f"consent: {value!r} {CONSENT_ERROR}")
    row["consent"] = "yes" if answer else "no"
    if now is not None:
        row["consent_at"] = now.isoformat()
    return row


@dataclass(frozen=True, slots=True)
class Repeat:
    line: int
    email: str
    first_line: int
    changed: tuple[str, ...]  # the fields this row changed


class Seen:
    """The first line of every address and a fingerprint of its fields so far, to say what
    a repeated row changed (a later row's non-empty fields win; interests add up).

    Kept small, since it holds every address of the file: per address one bytes object,
    the first line and a 32-bit hash per column (0: empty), each interest a column of
    its own, so 100,000 addresses cost some 20 MB, not the rows themselves."""

    SCALARS = ("first_name", "last_name", "company", "title", "source", "timezone")
    UNSEEN = frozenset({"consent_at"})  # set by the import itself, not by the row

    def __init__(self) -> None:
        self.prints: dict[str, bytes] = {}
        self.columns: dict[str, int] = {}

    def first(self, email: str) -> int:
        return array("I", self.prints[email][:4])[0]

    def note(self, line: int, item: LeadInput) -> Repeat | None:
        values: dict[str, object] = {name: getattr(item, name) for name in self.SCALARS}
        values.update(item.extra)
        values.update({f"interest:{name}": 1 for name in item.interests})
        for name in values:
            self.columns.setdefault(name, len(self.columns))
        new = array("I", bytes(4 * (len(self.columns) + 1)))
        for name, value in values.items():
            if value and name not in self.UNSEEN:
                new[1 + self.columns[name]] = (hash(value) & 0xFFFFFFFF) | 1
        known = self.prints.get(item.email)
        if known is None:
            new[0] = line
            self.prints[item.email] = new.tobytes()
            return None
        old = array("I", known)
        old.extend([0] * (len(new) - len(old)))
        changed: list[str] = []
        for name, index in self.columns.items():
            mark = new[1 + index]
            if mark and mark != old[1 + index]:
                old[1 + index] = mark
                what = "interest" if name.startswith("interest:") else name
                if what not in changed:
                    changed.append(what)
        self.prints[item.email] = old.tobytes()
        return Repeat(line, item.email, old[0], tuple(changed))


@dataclass
class CsvReport:
    path: Path
    fmt: CsvFormat
    counts: ImportReport = field(default_factory=ImportReport)
    repeats: list[Repeat] = field(default_factory=list)
    erased: list[tuple[int, str]] = field(default_factory=list)  # (line, address): skipped
    refused: int = 0  # consent no: kept, unsubscribed
    lines: dict[str, int] = field(default_factory=dict)  # address -> first line
    dry_run: bool = False

    def summary(self) -> str:
        """The lines worth naming first, the counts last (one line, as before)."""
        out = []
        if self.repeats:
            out.append("duplicates (the later row's non-empty fields win):")
            for r in self.repeats:
                what = f"updated {', '.join(r.changed)}" if r.changed else "changed nothing"
                out.append(f"  line {r.line}: {r.email} (first on line {r.first_line}) {what}")
        if self.counts.suppressed:
            out.append("suppressed, not enrolled:")
            for email, why in sorted(self.counts.suppressed.items(), key=lambda x: self._at(x[0])):
                out.append(f"  line {self._at(email)}: {email} ({why})")
        for line, email in self.erased:
            out.append(f"  line {line}: {email}: erased earlier at the person's request: "
                       "not stored (`nurtured suppress remove` if they came back)")  # fmt: skip
        out.append(self.fmt.describe())
        refused = f"; no consent (kept, never mailed): {self.refused}" if self.refused else ""
        dry = "; dry run: nothing was written" if self.dry_run else ""
        out.append(self.counts.summary() + refused + dry)
        return "\n".join(out)

    def _at(self, email: str) -> int:
        return self.lines.get(email, 0)


async def import_csv(
    path: Path, catalog: Catalog, rules: SendRules, now: datetime, *,
    source: str | None = None, progress: Callable[[int], None] | None = None,
    sales_sources: Collection[str] = (), suppression: Suppression | None = None,
    fmt: CsvFormat | None = None, dry_run: bool = False, app: App | None = None,
) -> CsvReport:  # fmt: skip
    """Import ``path`` in chunks of CHUNK rows; with ``dry_run`` all of it runs in one
    transaction that is rolled back (holding the database's write lock meanwhile). With
    ``app``, company matching, fit rules and profile points apply (see intake.upsert)."""
    report = CsvReport(path, fmt or csv_format(path), dry_run=dry_run)
    gate = Gate(suppression or Suppression())
    args = (report, catalog, rules, now, source, progress, sales_sources, gate, app)
    if not dry_run:  # chunk by chunk, as the API writes: a running daemon keeps sending
        await _import(*args)
        return report
    try:
        async with in_transaction():
            await _import(*args)
            raise _RollBack
    except _RollBack:
        pass
    return report


class _RollBack(Exception):
    pass


async def _import(
    report: CsvReport, catalog: Catalog, rules: SendRules, now: datetime, source: str | None,
    progress: Callable[[int], None] | None, sales_sources: Collection[str], gate: Gate,
    app: App | None,
) -> None:  # fmt: skip
    seen = Seen()
    chunk: list[tuple[int, LeadInput]] = []
    for line, item in read_csv(report.path, source=source, fmt=report.fmt, now=now):
        if isinstance(item, LeadError):
            report.counts.invalid.append((line, str(item)))
        else:
            repeat = seen.note(line, item)
            if repeat is not None:
                report.repeats.append(repeat)
            chunk.append((line, item))
        if len(chunk) >= CHUNK:
            await _chunk(report, chunk, seen, catalog, rules, now, sales_sources, gate, app)
            chunk = []
        if progress:
            progress(line)
    if chunk:
        await _chunk(report, chunk, seen, catalog, rules, now, sales_sources, gate, app)
    report.lines = {email: seen.first(email) for email in report.counts.suppressed}
    report.counts.duplicates = len(report.repeats)


async def _chunk(
    report: CsvReport, chunk: list[tuple[int, LeadInput]], seen: Seen, catalog: Catalog,
    rules: SendRules, now: datetime, sales_sources: Collection[str], gate: Gate,
    app: App | None,
) -> None:  # fmt: skip
    why = await gate.check({item.email for _, item in chunk})
    erased = {email for email, reason in why.items() if reason == "erased"}
    report.erased += [(line, item.email) for line, item in chunk if item.email in erased]
    consent: dict[str, str] = {}
    for _, item in chunk:  # the last row that says wins, as its other fields do
        consent[item.email] = item.extra.get("consent") or consent.get(item.email, "")
    items = [item for _, item in chunk if item.email not in erased]
    # An address already met in an earlier chunk exists now: not an update of the import.
    earlier = {i.email for _, i in chunk if seen.first(i.email) < chunk[0][0]}
    counts, blocked = report.counts, gate.settings
    yes = [i for i in items if consent[i.email] != "no"]
    no = [i for i in items if consent[i.email] == "no"]
    if yes:
        await upsert(yes, catalog, rules, now, counts, sales_sources=sales_sources,
                     suppression=blocked, app=app)  # fmt: skip
    if no:
        _, leads = await upsert(no, catalog, rules, now, counts, enroll=False,
                                sales_sources=sales_sources, suppression=blocked,
                                app=app)  # fmt: skip
        report.refused += await _refuse(leads, now)
    counts.updated -= len(earlier - erased)


async def _refuse(leads: list[Lead], now: datetime) -> int:
    """Unsubscribe at once the leads that said no (as the API does): kept, never mailed."""
    stopping = [lead for lead in leads if lead.status == LeadStatus.ACTIVE]
    if not stopping:
        return len(leads)
    changes = Changes()
    ids = [lead.id for lead in stopping]
    for enrollment in await Enrollment.filter(lead_id__in=ids, state__in=CURRENT):
        leave(enrollment, now, NO_CONSENT, changes)
    for lead in stopping:
        changes.lead_status[lead.id] = LeadStatus.UNSUBSCRIBED
        changes.event(lead.id, EventKind.ENDED, now, reason=NO_CONSENT,
                      status=str(LeadStatus.UNSUBSCRIBED))  # fmt: skip
    await changes.save()
    return len(leads)
