"""Every command, every option, given a bad value: exit code 2, one line ``error: ...`` on
stderr naming the value or the option, no traceback, and nothing written — no ``--out``, no
default ``runs/`` directory, every run directory and file it was pointed at unchanged byte for
byte. (The reliability issue's corpus, the option cases; its file cases are in
``test_hostile_files.py``.)

The bad values are the usual ones: text where a number is expected, negative, zero where it
must be positive, ``nan``, ``inf``, sizes too large for memory, empty strings, malformed lists
(``3,,4``), unknown names, paths that do not exist, a file where a directory is expected and a
directory where a file is. Everything is generated in ``tmp_path`` at test time and run in
process (:class:`typer.testing.CliRunner`), each command on the smallest net that reaches the
check, so that a value wrongly accepted costs a second, not a run.

The corpus, one file per family of commands (as ``sim/cli/`` groups them), each table a list
of cases on a base command line:

* ``test_hostile_options_nets.py``: ``umwelt simulate``, ``umwelt exact``;
* ``test_hostile_options_runs.py``: ``umwelt train``, ``umwelt plot``, ``umwelt phases``;
* ``test_hostile_options_analyses.py``: ``umwelt circuits``, ``umwelt hessian``;
* ``test_hostile_options_studies.py``: ``umwelt reproduce``;
* here: ``umwelt bench`` and the group itself (an unknown command or option), and the test
  that the files together cover every option of every command.

What they share (building the cases, the places they name, the check of a case) is in
``option_cases.py``; the runs they read, and the command built once per file, in
``conftest.py``.
"""

from __future__ import annotations

from collections import Counter

import pytest
import test_hostile_options_analyses as analyses
import test_hostile_options_nets as nets
import test_hostile_options_runs as runs
import test_hostile_options_studies as studies
from option_cases import GIVEN, assert_refused, cases

from sim.cli import app

pytestmark = pytest.mark.usefixtures("command_built_once")  # tests/hostile/conftest.py

# -- umwelt bench, and the group ------------------------------------------------------------------

CASES = cases("bench", ["bench"], [
    ("unknown", ["speed"], "unknown benchmark 'speed'"),
    ("empty", [""], "unknown benchmark ''"),
    ("capitals", ["ALL"], "unknown benchmark 'ALL'"),
    ("quick-unknown", ["--quick", "nope"], "unknown benchmark 'nope'"),
    ("option-unknown", ["--fast"], "No such option: --fast"),
])  # fmt: skip
CASES += cases("umwelt", [], [
    ("command-unknown", ["simulat"], "No such command 'simulat'"),
    ("option-unknown", ["--verbose"], "No such option: --verbose"),
])  # fmt: skip


@pytest.mark.parametrize("args, needle", CASES)
def test_a_bad_value_is_one_line_exit_2_and_nothing_is_written(args, needle, tmp_path, request,
                                                              monkeypatch):  # fmt: skip
    assert_refused(args, needle, tmp_path, request, monkeypatch)


def test_the_corpus_covers_every_command_and_option():
    """At least one case per option of every command (``--help``, ``--quiet``, ``--json`` and
    the figure switches take no value and cannot be bad), and well over 150 cases."""
    import typer

    group = typer.main.get_command(app)
    # (--blocks: a net with fewer than two weight layers, its bad case, cannot be built)
    switches = {"--help", "--quiet", "--json", "--figures", "--fresh", "--moments", "--blocks"}
    commands = ("simulate", "train", "exact", "circuits", "hessian", "plot", "phases", "bench",
                "reproduce")  # fmt: skip
    for name in commands:
        for param in group.commands[name].params:
            for opt in param.opts:
                if opt.startswith("--") and opt not in switches and not param.hidden:
                    assert (name, opt) in GIVEN, (name, opt)
    corpus = [*nets.CASES, *runs.CASES, *analyses.CASES, *studies.CASES, *CASES]
    counts = Counter(p.id.partition("-")[0] for p in corpus)
    assert len(corpus) > 150 and len(counts) == 10, counts
