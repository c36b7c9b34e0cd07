"""How much work the default test run does. ``pytest --run-slow`` (what CI runs, see .ci/run) does all of it.

The default run (the README's test command) deselects the tests marked ``slow`` and gives property tests
fewer examples; ``--run-slow`` runs every test with every example. conftest.py sets ``THOROUGH``.
"""

from __future__ import annotations

THOROUGH = False


def examples(thorough: int, quick: int) -> int:
    """Hypothesis examples for a property test: ``quick`` in the default run, ``thorough`` with --run-slow."""
    return thorough if THOROUGH else quick
