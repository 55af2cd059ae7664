"""Every command of the command line, and the spark-submit entry scripts, given bad inputs as a new user gives
them (missing or invalid arguments, a lake root or table that is not there, a bad setting): one line on stderr,
no Python traceback, no Java stack, no library WARN line, and the documented exit code (2 for usage and
configuration errors and for a table or version that does not exist)."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.sample.retail import RetailGenerator
from tests.conftest import CONF, REPO

DAY = dt.date(2024, 7, 1)


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-inputs") / "lake"
    RetailGenerator(root, days=1, rows_per_day=5, seed=1, end_date=DAY, products=5, customers=5).write()
    return root


# (arguments, words the one error line holds); {lake} is a lake with raw files only, {nowhere} a missing root
CASES = {
    "run": [(["--date", "2024-13-01"], "not a date"), (["--start", "2024-01-05", "--end", "2024-01-01"], "before"),
            (["--pending", "--lake-root", "{nowhere}"], "no raw data under the lake root")],
    "plan": [(["--pending", "--look-back-days", "-1"], ">= 0"), (["--date", "yesterday"], "not a date"),
             (["--pending", "--lake-root", "{nowhere}"], "no raw folder of any dataset")],
    "generate": [(["--days", "0"], "at least 1"), (["--rows-per-day", "many"], "invalid int value"),
                 (["--lake-root", "s3://bucket/lake"], "local lake root only")],
    "land": [(["--from", "{nowhere}", "--to", "s3://bucket/raw"], "no such folder"), (["--from", "{lake}"], "--to"),
             (["--from", "{lake}/raw", "--to", "/not/a/bucket"], "s3://")],
    "validate-config": [(["--conf-dir", "{nowhere}"], "no such directory"), (["--frobnicate"], "unrecognized"),
                        (["--conf-dir"], "expected one argument")],
    "quality": [(["--date", "someday"], "not a date"), (["--date", "2020-01-01"], "no quality metrics"),
                (["--limit", "3"], "unrecognized")],
    "history": [(["silver/nosuch"], "no Delta table"), ([], "table"), (["silver/sales", "--limit", "x"], "invalid")],
    "read": [(["silver/nosuch"], "no Delta table"), (["bronze/sales", "--limit", "x"], "invalid"),
             (["raw/sales"], "no Delta table")],
    "runs": [(["show"], "needs a RUN_ID"), (["show", "20240701-nosuch"], "no run"), (["explode"], "invalid choice")],
    "restore": [(["silver/sales"], "--to-version"), (["silver/nosuch", "--to-version", "0"], "no Delta table"),
                (["silver/sales", "--to-version", "x"], "invalid int value")],
    "optimize": [(["--engine", "spark"], "invalid choice"), (["--frobnicate"], "unrecognized"),
                 (["--lake-root", "s3://AKIA:secret@bucket/lake"], "holds credentials")],
    "vacuum": [(["--retention-hours", "1"], "--force"), (["--retention-hours", "x"], "invalid int value"),
               (["--dry-run", "--lake-root", "s3://AKIA:secret@bucket/lake"], "holds credentials")],
    "maintenance": [(["--retention-hours", "-1", "--force"], "retention"), (["--engine", "spark"], "invalid choice"),
                    (["--frobnicate"], "unrecognized")],
}


def _env(lake: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "PYSPARK_", "SPARK_"))}
    env.update(LAKEHOUSE_ROOT=str(lake), LAKEHOUSE_CONF_DIR=str(CONF), LAKEHOUSE_ENGINE="rust", **extra)
    return env


def _clean_error(done: subprocess.CompletedProcess[str], words: str, code: int = 2) -> None:
    err = done.stderr
    assert done.returncode == code, (done.returncode, done.stdout[-2000:], err[-2000:])
    assert "Traceback" not in err + done.stdout and "\tat " not in err and " WARN " not in err, err
    errors = [line for line in err.splitlines() if line.strip()]
    # a spec problem is reported as file:line: field: message, like a compiler's
    assert len(errors) == 1 and (errors[0].startswith("error:") or re.match(r"^\S+:\d+: ", errors[0])), err
    assert words in errors[0], (words, err)


@pytest.mark.parametrize(("command", "case"), [(c, i) for c, cases in CASES.items() for i in range(len(cases))],
                         ids=[f"{c}-{i}" for c, cases in CASES.items() for i in range(len(cases))])
def test_every_command_answers_bad_input_in_one_line(lake, tmp_path, command, case):
    args, words = CASES[command][case]
    args = [a.replace("{lake}", str(lake)).replace("{nowhere}", str(tmp_path / "nowhere")) for a in args]
    done = subprocess.run([sys.executable, "-m", "lakehouse.cli", command, *args], env=_env(lake),
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    _clean_error(done, words)


@pytest.mark.parametrize(("script", "args", "words"), [
    ("daily_aggregation.py", ["--date", "2024-02-30"], "not a date"),
    ("daily_aggregation.py", ["--pending", "--lake-root", "{nowhere}"], "no raw data under the lake root"),
    ("maintenance.py", ["--retention-hours", "2"], "--force"),
])
def test_the_entry_scripts_answer_bad_input_in_one_line(lake, tmp_path, script, args, words):
    args = [a.replace("{nowhere}", str(tmp_path / "nowhere")) for a in args]
    done = subprocess.run([sys.executable, str(REPO / "spark_jobs" / script), *args], env=_env(lake),
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    _clean_error(done, words)
