"""
One redaction of every known secret, for every text that came from outside (pure, no I/O).

A KIS server may echo what it was sent: the app key, the app secret, an approval key. Any text it
controls (an ack's ``msg1``/``tr_key``, a close reason, an HTTP error body, an exception built from
them, a captured frame) passes through one shared `Redactor` before it reaches a log, an exception,
the console, a file or a report. It replaces:

* each secret verbatim, and in the encodings a server is likely to apply: JSON escapes (``\\/``,
  ``\\uXXXX`` for non-ASCII), URL encoding (``%2F``, ``+``), HTML escapes;
* any run of at least `PARTIAL_RUN` characters of a secret (a truncated echo: a WebSocket close
  reason holds at most 123 bytes, a 180-character app secret does not fit);
* the value of every ``"approval_key"`` field, known or not;
* a text that still spells a secret once its escapes are decoded (a server that ``\\u``-escapes
  every character): a JSON text is re-serialised with its strings redacted, any other text is
  withheld whole (`WITHHELD`).

Secrets shorter than `MIN_SECRET_LENGTH` are refused at the edge (`Credentials`, the approval
reply): replacing a 3-character string everywhere would shred data, leaving it would leak it.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any
from typing import Final

REDACTED: Final = "***"
WITHHELD: Final = "*** (withheld: it spelled a secret in an encoded form)"
MIN_SECRET_LENGTH: Final = 8  # real KIS values: app key 36, app secret 180, approval key 36 or 286
PARTIAL_RUN: Final = 20  # a run this long of a secret is redacted wherever it appears
_GRAM: Final = 10  # PARTIAL_RUN - _GRAM + 1 is the scan step: every run of PARTIAL_RUN holds a probe
_STEP: Final = PARTIAL_RUN - _GRAM + 1
_MIN_REDACTED: Final = 4  # shorter values given to a Redactor are ignored (they are refused earlier)
_SECRET_KEYS: Final = frozenset({"approval_key", "appkey", "app_key", "appsecret", "app_secret", "secretkey"})
_APPROVAL_KEY_RE: Final = re.compile(r'("approval_key"\s*:\s*")[^"]*(")')
_ESCAPE_RE: Final = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)", re.DOTALL)
_SIMPLE_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_MAX_DEPTH: Final = 8
_DATA_HEADS: Final = frozenset({"0|", "1|"})


def encodings(secret: str) -> list[str]:
    """`secret` as a server may spell it: verbatim, JSON-, URL- and HTML-escaped (distinct values)."""
    forms = [
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        secret.replace("/", "\\/"),
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
        html.escape(secret),
    ]
    forms += [_lower_percent(form) for form in forms if "%" in form]
    # Bytes (a binary or non-UTF-8 frame) are scanned as latin-1 text: add the UTF-8 bytes' view.
    forms += [form.encode("utf-8").decode("latin-1") for form in forms if not form.isascii()]
    return list(dict.fromkeys(forms))


def _lower_percent(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def _unescape_one(match: re.Match[str]) -> str:
    code = match.group(1)
    if code[0] in "ux" and len(code) > 1:
        return chr(int(code[1:], 16))
    return _SIMPLE_ESCAPES.get(code, code)


def decode_escapes(text: str) -> str:
    """Undo JSON/Python backslash escapes, URL and HTML encoding (a few rounds: nested encodings)."""
    for _ in range(3):
        decoded = _ESCAPE_RE.sub(_unescape_one, text) if "\\" in text else text
        if "%" in decoded:
            decoded = urllib.parse.unquote(decoded, errors="replace")
        if "&" in decoded:
            decoded = html.unescape(decoded)
        if decoded == text:
            break
        text = decoded
    return text


class Redactor:
    """
    Replace every known secret in text that came from outside (see the module doc).

    Share one instance between the sessions, the capture writer and the data client of a run, and
    `add` every approval key the moment it is issued. Call from one thread (the event loop's).
    """

    __slots__ = ("_forms", "_grams", "_secrets", "_short", "_variants")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: tuple[str, ...] = ()
        self._variants: tuple[str, ...] = ()  # every encoding of every secret, >= PARTIAL_RUN long
        self._short: tuple[str, ...] = ()  # encodings shorter than PARTIAL_RUN: replaced verbatim
        self._forms: tuple[str, ...] = ()  # every encoding, longest first (the data-frame path)
        self._grams: dict[str, tuple[tuple[int, int], ...]] = {}  # probe -> ((variant, offset), ...)
        for secret in secrets:
            self.add(secret)

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"

    def __len__(self) -> int:
        return len(self._secrets)

    def add(self, secret: str) -> None:
        """Redact `secret` from now on (idempotent; values under 4 characters are ignored)."""
        if not isinstance(secret, str) or len(secret) < _MIN_REDACTED or secret in self._secrets:
            return
        secrets = (*self._secrets, secret)
        forms = list(dict.fromkeys(form for s in secrets for form in encodings(s)))
        variants = tuple(form for form in forms if len(form) >= PARTIAL_RUN)
        grams: dict[str, list[tuple[int, int]]] = {}
        for index, variant in enumerate(variants):
            for offset in range(len(variant) - _GRAM + 1):
                grams.setdefault(variant[offset : offset + _GRAM], []).append((index, offset))
        self._grams = {gram: tuple(hits) for gram, hits in grams.items()}
        self._variants = variants
        self._short = tuple(
            sorted(
                (form for form in forms if _MIN_REDACTED <= len(form) < PARTIAL_RUN), key=len, reverse=True
            )
        )
        self._forms = tuple(sorted(forms, key=len, reverse=True))
        self._secrets = secrets

    def __call__(self, text: str, _depth: int = 0) -> str:
        """Return `text` with every secret replaced by `REDACTED` (or `WITHHELD`, see the module doc)."""
        if self._secrets:
            if text[:2] in _DATA_HEADS:
                # The hot path (every data frame of a recording): whole secrets and their encodings,
                # found by C-speed substring search. A data frame's fields are 1-12 characters wide.
                for form in self._forms:
                    if form in text:
                        text = text.replace(form, REDACTED)
                if "approval_key" in text:
                    text = _APPROVAL_KEY_RE.sub(rf"\g<1>{REDACTED}\g<2>", text)
                return text
            text = self._surgical(text)
        if "approval_key" in text:
            text = _APPROVAL_KEY_RE.sub(rf"\g<1>{REDACTED}\g<2>", text)
        if self._secrets and ("\\" in text or "%" in text or "&" in text):
            decoded = decode_escapes(text)
            if decoded != text and self._spells_secret(decoded):
                return self._rewrite(text, _depth)
        return text

    def bytes(self, data: bytes) -> bytes:
        """The same for a binary message (scanned as latin-1, so every byte value survives)."""
        if not self._secrets:
            return data
        text = data.decode("latin-1")
        clean = self._surgical(text)
        return data if clean == text else clean.encode("latin-1")

    def value(self, value: Any, key: str = "", _depth: int = 0) -> Any:
        """Redact a JSON-like value: strings, and whole values under secret-looking keys, recursively."""
        if key.lower() in _SECRET_KEYS and value:
            return REDACTED
        if isinstance(value, str):
            return self(value, _depth)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, dict):
            return {
                (self(k, _depth) if isinstance(k, str) else k): self.value(v, str(k), _depth)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.value(v, "", _depth) for v in value]
        return self(str(value), _depth)  # anything else is shown as text: redact that text

    def holds_secret(self, text: str) -> bool:
        """Whether `text` spells a known secret, as is or once decoded."""
        return self._spells_secret(text) or self._spells_secret(decode_escapes(text))

    # -- internals --------------------------------------------------------------------------------

    def _surgical(self, text: str) -> str:
        if len(text) >= PARTIAL_RUN and self._grams:
            spans = self._find(text)
            if spans:
                text = _cut(text, spans)
        for short in self._short:
            if short in text:
                text = text.replace(short, REDACTED)
        return text

    def _spells_secret(self, text: str) -> bool:
        return bool(self._find(text)) or any(short in text for short in self._short)

    def _find(self, text: str) -> list[tuple[int, int]]:
        """Spans of `text` that are runs of >= PARTIAL_RUN characters of a secret's encoding."""
        grams = self._grams
        if not grams or len(text) < PARTIAL_RUN:
            return []
        spans: list[tuple[int, int]] = []
        end = len(text) - _GRAM
        i = 0
        while i <= end:
            hits = grams.get(text[i : i + _GRAM])
            if hits is None:
                i += _STEP
                continue
            reach = i + _GRAM
            for index, offset in hits:
                start, stop = _extend(text, i, self._variants[index], offset)
                if stop - start >= PARTIAL_RUN:
                    spans.append((start, stop))
                    reach = max(reach, stop)
            i = reach if reach > i + _GRAM else i + _STEP
        return spans

    def _rewrite(self, text: str, depth: int) -> str:
        """A text that spells a secret only once decoded: re-serialise JSON, withhold anything else."""
        if depth < _MAX_DEPTH and text.lstrip()[:1] in ("{", "["):
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                return WITHHELD
            clean = json.dumps(self.value(parsed, "", depth + 1), ensure_ascii=False, separators=(",", ":"))
            if not self.holds_secret(clean):
                return clean
        return WITHHELD


def _extend(text: str, i: int, variant: str, offset: int) -> tuple[int, int]:
    """Grow the probe match ``text[i:i+_GRAM] == variant[offset:offset+_GRAM]`` both ways."""
    start, vstart = i, offset
    while start > 0 and vstart > 0 and text[start - 1] == variant[vstart - 1]:
        start -= 1
        vstart -= 1
    stop, vstop = i + _GRAM, offset + _GRAM
    limit, vlimit = len(text), len(variant)
    while stop < limit and vstop < vlimit and text[stop] == variant[vstop]:
        stop += 1
        vstop += 1
    return start, stop


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    """Replace each span (merged where they overlap or touch) by one `REDACTED`."""
    spans.sort()
    merged = [list(spans[0])]
    for start, stop in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    out = []
    position = 0
    for start, stop in merged:
        out.append(text[position:start])
        out.append(REDACTED)
        position = stop
    out.append(text[position:])
    return "".join(out)
