"""Command-line commands for data tools (`abrsim ladders ...`, `abrsim traces ...` beyond `generate`)."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add this module's commands to the ``abrsim`` group."""
    del group  # no commands yet
