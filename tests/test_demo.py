"""The ``throttlekit`` command line and its ``demo`` command."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest
from rich.console import Console

from throttlekit import _demo
from throttlekit.__main__ import main


def row(client: str, output: str) -> list[str]:
    """Return the cells of the results table's row for ``client``."""
    match = re.search(
        rf"^\s*{client}\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+) s\s", output, re.M
    )
    assert match is not None, output
    return list(match.groups())


def test_demo_runs_both_clients_through_the_real_entry_point() -> None:
    """``python -m throttlekit demo`` exits 0 and prints a row per client."""
    env = {**os.environ, "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "throttlekit", "demo", "--calls", "30", "--rate", "20"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    naive = row("naive", done.stdout)
    throttled = row("throttlekit", done.stdout)
    assert naive[0] == throttled[0] == "30"
    assert int(naive[1]) == 30 + int(naive[2])
    assert int(throttled[1]) == 30 + int(throttled[2])


def test_run_returns_what_the_server_counted() -> None:
    """run() with one client returns its calls, counted by the server."""
    config = _demo.DemoConfig(calls=5, rate=20, burst=20, clients=("throttlekit",))
    console = Console(file=io.StringIO())

    results = _demo.run(config, console=console)

    assert len(results) == 1
    result = results[0]
    assert (result.client, result.calls, result.requests, result.rejected) == (
        "throttlekit",
        5,
        5,
        0,
    )


def test_render_prints_the_table() -> None:
    """The table shows each client's counts, wall time and efficiency."""
    config = _demo.DemoConfig(calls=150, rate=10, burst=10)
    results = [
        _demo.RunResult("naive", 150, 368, 218, 14.4),
        _demo.RunResult("throttlekit", 150, 150, 0, 14.2),
    ]
    out = io.StringIO()

    _demo.render(config, results, Console(file=out, width=120))

    text = out.getvalue()
    assert row("naive", text) == ["150", "368", "218", "14.4"]
    assert row("throttlekit", text) == ["150", "150", "0", "14.2"]
    assert "0.97" in text
    assert "0.99" in text


def test_efficiency_is_ideal_time_over_wall_time() -> None:
    """Efficiency is max(0, calls - burst) / rate over the wall time."""
    config = _demo.DemoConfig(calls=150, rate=10, burst=10)
    result = _demo.RunResult("x", 150, 150, 0, 16.0)

    assert config.ideal == 14.0
    assert result.efficiency(config.ideal) == 0.875
    assert result.efficiency(0.0) is None


@pytest.mark.parametrize(
    ("burst", "headroom", "client_burst"),
    [(10, 2, 8), (10, 0, 10), (2, 5, 1)],
    ids=["default", "no-headroom", "at-least-one"],
)
def test_client_burst_leaves_headroom(
    burst: int, headroom: int, client_burst: int
) -> None:
    """The throttlekit client's burst is the server's minus headroom, >= 1."""
    config = _demo.DemoConfig(burst=burst, headroom=headroom)

    assert config.client_burst == client_burst


def test_no_arguments_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    """Running ``throttlekit`` without a command prints help and returns 0."""
    assert main([]) == 0

    assert "demo" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"]], ids=["top", "demo"])
def test_help_exits_zero(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """``--help`` works for the command and for ``demo``."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)

    assert exit_info.value.code == 0
    assert "usage: throttlekit" in capsys.readouterr().out


def test_demo_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    """``demo --help`` lists each option the demo takes."""
    with pytest.raises(SystemExit):
        main(["demo", "--help"])

    out = capsys.readouterr().out
    for option in (
        "--rate",
        "--burst",
        "--calls",
        "--concurrency",
        "--org",
        "--headroom",
        "--latency",
        "--only",
    ):
        assert option in out


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--rate", "0"],
        ["demo", "--calls", "many"],
        ["demo", "--org", "a/b"],
        ["demo", "--latency", "-1"],
        ["demo", "--only", "both"],
    ],
    ids=["zero-rate", "not-a-number", "org-with-slash", "negative-latency", "only"],
)
def test_bad_options_exit_with_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid option value exits 2 with a message naming the option."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)

    assert exit_info.value.code == 2
    assert f"argument {argv[1]}" in capsys.readouterr().err
