"""Not implemented yet."""

from __future__ import annotations

import argparse

from kis_adapter.errors import KISError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise KISError("'demo' is not implemented yet")
