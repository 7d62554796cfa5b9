"""
KIS's stock-futures master file ``fo_stk_code_mts.mst`` (pure: bytes in, rows out; no I/O, no Nautilus).

One record per line, cp949, ``|``-separated, no header, 9 columns::

    1|A11608|KR4A11680001|삼성전자   F 202608 (  10)| |00000.00|1|005930|삼성전자
    product type | short code | standard code | name | ATM | strike | month class | underlying | its name

KIS publishes it zipped (``fo_stk_code_mts.mst.zip``); both forms are read. Product types 1 and 3 are
KOSPI and KOSDAQ stock futures (outright); 2 and 4 are spreads, 5 and 6 options. The file has no
expiry, tick or price limits: `kis_adapter.providers` derives them (KRX calendar and tick ladder).

Bad input never raises past `parse_master` except for a file that is not a master at all
(`MasterError`, one clear line): a row that cannot be used is counted by reason in `MasterParse.skipped`
and never guessed at.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Final

from kis_adapter.errors import KISError

MASTER_FILE_NAME: Final = "fo_stk_code_mts.mst"
MASTER_ZIP_NAME: Final = "fo_stk_code_mts.mst.zip"
ENCODING: Final = "cp949"
COLUMNS: Final = 9
OUTRIGHT_TYPES: Final = frozenset({"1", "3"})  # KOSPI / KOSDAQ stock futures
KNOWN_TYPES: Final = frozenset({"1", "2", "3", "4", "5", "6"})
_MAX_BYTES: Final = 64 << 20  # the real file is a few hundred KB; refuse to inflate a zip bomb

# "삼성전자   F 202608 (  10)": the contract month and the contract size in shares.
_NAME_RE: Final = re.compile(r"\bF\s+(?P<year>\d{4})(?P<month>\d{2})\b(?:\s*\(\s*(?P<size>\d+)\s*\))?")


class MasterError(KISError):
    """The bytes are not a usable master file (not zip/text, wrong encoding throughout, no rows)."""


@dataclass(frozen=True, slots=True)
class MasterRow:
    """One outright stock-futures contract of the master, fields verbatim (stripped)."""

    product_type: str
    code: str
    std_code: str
    name: str
    month_class: str
    underlying: str
    underlying_name: str
    year: int
    month: int
    multiplier: int | None  # the "(  10)" of the name; None when the name has none

    @property
    def contract_month(self) -> str:
        return f"{self.year:04d}{self.month:02d}"


@dataclass(slots=True)
class MasterParse:
    """The rows of a master and what was left out, by reason (stable keys for logs)."""

    rows: list[MasterRow] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    encoding: str = ENCODING
    lines: int = 0

    def by_code(self) -> dict[str, MasterRow]:
        return {row.code: row for row in self.rows}

    def describe_skips(self) -> str:
        return ", ".join(f"{reason}={n}" for reason, n in sorted(self.skipped.items())) or "none"


def is_valid_code(code: str) -> bool:
    """Whether `code` can be a master short code (1-12 ASCII letters and digits)."""
    return 0 < len(code) <= 12 and code.isascii() and code.isalnum()


def read_master_bytes(data: bytes, source: str = "master") -> bytes:
    """The ``.mst`` bytes of `data`: the file itself, or its member when `data` is the KIS zip."""
    if data[:4] != b"PK\x03\x04":
        return data
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            name = next((n for n in names if n.rsplit("/", 1)[-1] == MASTER_FILE_NAME), None)
            if name is None:
                mst = [n for n in names if n.lower().endswith(".mst")]
                if len(mst) != 1:
                    raise MasterError(f"{source}: zip holds no {MASTER_FILE_NAME} (members: {names[:5]})")
                name = mst[0]
            info = archive.getinfo(name)
            if info.file_size > _MAX_BYTES:
                raise MasterError(f"{source}: {name} inflates to {info.file_size:,} bytes; not a master")
            return archive.read(name)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise MasterError(f"{source}: damaged zip ({type(exc).__name__}: {exc})") from None


def _decode(raw: bytes, parse: MasterParse) -> list[str]:
    """Lines of the file: cp949 as KIS writes it; UTF-8 (said once) when that is what it is."""
    for encoding in (ENCODING, "utf-8"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        parse.encoding = encoding
        return text.splitlines()
    # Neither decodes the whole file: decode line by line and skip (count) the lines that do not.
    lines = []
    for line in raw.splitlines():
        try:
            lines.append(line.decode(ENCODING))
        except UnicodeDecodeError:
            parse.skipped["bad_encoding"] += 1
    return lines


def parse_master(data: bytes, source: str = "master", *, outright_only: bool = True) -> MasterParse:
    """
    Parse a master file (plain or zipped) into `MasterRow`s of outright futures.

    Raises `MasterError` when `data` is not a master at all: empty, binary, undecodable, or with
    no row of the 9-column shape. Everything else is a counted skip: ``not_outright`` (spreads,
    options), ``unknown_product_type``, ``missing_columns``, ``bad_code``, ``bad_contract_month``,
    ``bad_encoding``, ``duplicate_code``.
    """
    raw = read_master_bytes(data, source)
    if not raw.strip():
        raise MasterError(f"{source}: empty master file")
    if b"\x00" in raw[:4096]:
        raise MasterError(f"{source}: binary data, not a {MASTER_FILE_NAME} text file")
    parse = MasterParse()
    lines = _decode(raw, parse)
    shaped = 0
    seen: set[str] = set()
    for line in lines:
        if not line.strip():
            continue
        parse.lines += 1
        columns = [c.strip() for c in line.split("|")]
        if len(columns) < COLUMNS:
            parse.skipped["missing_columns"] += 1
            continue
        shaped += 1
        product_type, code, std_code, name, _atm, _strike, month_class, underlying, underlying_name = columns[
            :COLUMNS
        ]
        if product_type not in KNOWN_TYPES:
            parse.skipped["unknown_product_type"] += 1
            continue
        if outright_only and product_type not in OUTRIGHT_TYPES:
            parse.skipped["not_outright"] += 1
            continue
        if not is_valid_code(code):
            parse.skipped["bad_code"] += 1
            continue
        match = _NAME_RE.search(name)
        year, month = (int(match["year"]), int(match["month"])) if match else (0, 0)
        if not match or not 1 <= month <= 12:
            parse.skipped["bad_contract_month"] += 1
            continue
        if code in seen:
            parse.skipped["duplicate_code"] += 1
            continue
        seen.add(code)
        size = match["size"]
        parse.rows.append(
            MasterRow(
                product_type=product_type,
                code=code,
                std_code=std_code,
                name=name,
                month_class=month_class,
                underlying=underlying,
                underlying_name=underlying_name,
                year=year,
                month=month,
                multiplier=int(size) if size else None,
            )
        )
    if shaped == 0:
        raise MasterError(
            f"{source}: no row with the {COLUMNS} '|'-separated columns of {MASTER_FILE_NAME} "
            f"({parse.lines} lines read)"
        )
    return parse


# -- WRITING (simulator, tests, samples) ---------------------------------------------------------


def isin_check_digit(body: str) -> str:
    """The ISIN check digit of the first 11 characters (letters A=10 ... Z=35, then Luhn)."""
    digits = "".join(str(int(c, 36)) for c in body.upper())
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2 == 0:
            n *= 2
            n = n - 9 if n > 9 else n
        total += n
    return str((10 - total % 10) % 10)


def standard_code(code: str, year: int, month: int) -> str:
    """
    ``A11612`` (2026-12) → ``KR4A116C0004``: ``KR4`` + the KRX 8-char code + the ISIN check digit.

    The KRX code is the short code's type letter and underlying id, the last year digit, the
    month as 1-9/A-C and ``000`` (``A1168000`` is 2026-08).
    """
    krx = f"{code[:3]}{year % 10}{'123456789ABC'[month - 1]}000"
    body = f"KR4{krx}"
    return body + isin_check_digit(body)


def contract_month_of(code: str) -> tuple[int, int] | None:
    """The contract month of a 2026-scheme code (``A11612`` → 2026-12), None for other schemes."""
    if len(code) == 6 and code[0] == "A" and code[3:].isdigit():
        year, month = 2020 + int(code[3]), int(code[4:])
        return (year, month) if 1 <= month <= 12 else None
    return None


def format_row(row: MasterRow) -> str:
    """One master line, as KIS writes it."""
    return "|".join(
        (
            row.product_type,
            row.code,
            row.std_code,
            row.name,
            " ",
            "00000.00",
            row.month_class,
            row.underlying,
            row.underlying_name,
        )
    )


def build_master(rows: Iterable[MasterRow], *, zipped: bool = False) -> bytes:
    """Serialise rows as a cp949 master file (or the KIS zip holding it)."""
    text = "".join(format_row(row) + "\n" for row in rows).encode(ENCODING, errors="replace")
    return zip_master(text) if zipped else text


def zip_master(mst: bytes) -> bytes:
    """The ``.mst`` bytes as KIS publishes them: a zip holding one member ``fo_stk_code_mts.mst``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(MASTER_FILE_NAME, date_time=(2026, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, mst)
    return buffer.getvalue()


def synthetic_row(code: str, underlying_name: str | None = None, underlying: str | None = None) -> MasterRow:
    """
    A plausible master row for a code, for a simulator serving a capture without its master.

    The contract month comes from the code (2026 scheme); the underlying ticker is only known for the
    ids KIS documents by example (``11`` Samsung Electronics 005930, ``50`` SK hynix 000660), else a
    made-up six-digit ``9NNNNN`` (the id in base 36) with a placeholder name.
    """
    month = contract_month_of(code) or (2026, 12)
    known = {"11": ("005930", "삼성전자"), "50": ("000660", "SK하이닉스")}.get(code[1:3])
    ticker = underlying or (known[0] if known else f"9{int(code[1:3] or '0', 36):05d}")
    name_of = underlying_name or (known[1] if known else f"종목{code[1:3]}")
    year, mon = month
    return MasterRow(
        product_type="1",
        code=code,
        std_code=standard_code(code, year, mon) if contract_month_of(code) else f"KR4{code:<8}"[:11] + "0",
        name=f"{name_of}   F {year:04d}{mon:02d} (  10)",
        month_class="1",
        underlying=ticker,
        underlying_name=name_of,
        year=year,
        month=mon,
        multiplier=10,
    )


def master_for_codes(codes: Iterable[str], *, zipped: bool = True) -> bytes:
    """A master listing `codes` (sorted, unique, invalid codes left out) with `synthetic_row`s."""
    valid = sorted({code for code in codes if is_valid_code(code)})
    return build_master((synthetic_row(code) for code in valid), zipped=zipped)
