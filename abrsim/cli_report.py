"""Command-line commands for figures and reports (`abrsim report`)."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add this module's commands to the ``abrsim`` group."""
    del group  # no commands yet
