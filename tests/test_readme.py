"""The README's commands stay the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", readme)


def test_readme_opens_with_the_demo_and_the_test_command() -> None:
    """The first two commands run the demo and the whole test suite."""
    demo, tests = commands()[:2]

    assert demo.endswith("throttlekit demo")
    assert tests.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command_word_for_word() -> None:
    """.ci/run contains the README's test command unchanged."""
    tests = commands()[1]

    assert tests in (ROOT / ".ci" / "run").read_text()
