"""
KIS short codes: the ``tr_key`` of a registration and the ``FUTS_SHRN_ISCD`` of a record, e.g.
``A11612``, ``111W07``, ``101W9000``. One validator for every place a user names codes (``record
--codes``, ``KISDataClientConfig.codes``), so a code refused in one is refused in all, with the same
sentence. Pure: no I/O, no Nautilus.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

MAX_CODE_LENGTH: Final = 12  # the longest tr_key KIS accepts
_CODE: Final = re.compile(r"[A-Za-z0-9]{1,12}", re.ASCII)
_EXAMPLE: Final = "A11612"


def code_problem(code: object) -> str | None:
    """Why `code` is not a KIS short code (one sentence), or None when it is one."""
    if not isinstance(code, str):
        return f"invalid code {code!r}: expected a string such as {_EXAMPLE}"
    if _CODE.fullmatch(code):
        return None
    stem, dot, _ = code.rpartition(".")
    if dot and _CODE.fullmatch(stem):
        return f"invalid code {code!r}: use the code {stem}, not the instrument id {code}"
    return (
        f"invalid code {code!r}: a KIS short code is 1-{MAX_CODE_LENGTH} ASCII letters or digits, "
        f"e.g. {_EXAMPLE}"
    )


def check_code(code: object) -> str:
    """Return `code` if it is a KIS short code; raise `ValueError` with `code_problem` otherwise."""
    problem = code_problem(code)
    if problem is not None:
        raise ValueError(problem)
    return code  # type: ignore[return-value]


def check_codes(codes: Iterable[object]) -> list[str]:
    """Every code checked (the first bad one raises `ValueError`), in order."""
    return [check_code(code) for code in codes]
