"""Pensieve's buffer-based baseline (BB) as a Python policy: the documented example of docs/policies.md.

It makes exactly the decisions of the built-in ``bb`` algorithm (same arithmetic), so the tests
use it to prove that a Python policy runs through both engines like a compiled one:

    abrsim run --policy docs/examples/buffer_based.py:BufferBased --abr bb
"""


class BufferBased:
    """The lowest rung below the reservoir, the top rung above reservoir + cushion, linear between."""

    name = "bb_python"  # the name results show (default: the class name)

    def __init__(self, reservoir_s: float = 5.0, cushion_s: float = 10.0) -> None:
        self.reservoir_s = reservoir_s
        self.cushion_s = cushion_s
        self.top = 0

    def reset(self, ladder, model, rng):
        """A new session on ``ladder`` (rungs from 0 up); ``rng`` is the session's own generator."""
        self.top = ladder.rung_count - 1

    def choose(self, obs):
        """The rung of the next segment (a rung alone, or ``(rung, pause_s)``)."""
        buffer_s = obs.buffer_s
        if buffer_s < self.reservoir_s:
            return 0
        if buffer_s >= self.reservoir_s + self.cushion_s:
            return self.top
        return int(self.top * (buffer_s - self.reservoir_s) / self.cushion_s)
