"""Command-line behaviour that needs no Spark: generate's overwrite guard, usage errors and their exit codes."""

from __future__ import annotations

from lakehouse.cli import main


def test_generate_refuses_to_overwrite_raw_dates(tmp_path, capsys):
    lake = str(tmp_path / "lake")
    args = ["generate", "--lake-root", lake, "--days", "2", "--rows-per-day", "5", "--end-date", "2024-07-02"]
    assert main(args) == 0
    sales = tmp_path / "lake" / "raw" / "sales" / "date=2024-07-02" / "sales.csv"
    sales.write_text("edited by hand\n")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == (f"error: raw files exist already for 2024-07-01, 2024-07-02 under {lake}/raw: "
                   "generate would overwrite them; add --force to do it, or choose other dates with --end-date\n")
    assert sales.read_text() == "edited by hand\n"  # nothing was written
    # the days after are free; --force overwrites
    assert main([*args[:-1], "2024-07-04"]) == 0
    assert main([*args, "--force"]) == 0
    assert sales.read_bytes() != b"edited by hand\n"


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["run", "--end", "2024-07-01", "--lake-root", str(tmp_path)]) == 2
    assert "--end needs --start" in capsys.readouterr().err
    assert main(["vacuum", "--retention-hours", "1", "--lake-root", str(tmp_path)]) == 2
    assert "add --force" in capsys.readouterr().err
    assert main(["run", "--look-back-days", "3", "--lake-root", str(tmp_path)]) == 2
    assert "with --pending" in capsys.readouterr().err
    assert main(["plan", "--pending", "--look-back-days", "-1", "--lake-root", str(tmp_path)]) == 2
    assert ">= 0" in capsys.readouterr().err
    assert main(["land", "--from", str(tmp_path / "none"), "--to", "s3://bucket/raw"]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_first_hour_mistakes_are_one_line_errors(tmp_path, capsys, monkeypatch):
    """What a new user gets wrong first: each is one line naming the fix, exit 2, no traceback, no Spark."""
    import datetime as dt

    from tests.conftest import CONF

    monkeypatch.setenv("LAKEHOUSE_CONF_DIR", str(CONF))
    nowhere = ["--lake-root", str(tmp_path / "typo")]

    def fails(args: list[str], *words: str) -> None:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and all(w in err for w in words), err

    fails(["run", "--pending", *nowhere], f"no raw data under the lake root {tmp_path / 'typo'}", "LAKEHOUSE_ROOT")
    fails(["plan", "--pending", *nowhere], "no raw folder of any dataset exists")
    fails(["run", "--date", "2024-07-01", *nowhere], "no raw data")
    fails(["generate", "--days", "0", *nowhere], "--days and --rows-per-day of at least 1")
    fails(["generate", "--rows-per-day", "-3", *nowhere], "at least 1")
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    fails(["run", "--start", str(tomorrow), *nowhere], "without --end runs through yesterday")
    for name, value in (("LAKEHOUSE_BATCH_DAYS", "abc"), ("LAKEHOUSE_BATCH_DAYS", "0"), ("LAKEHOUSE_RETRIES", "1.5"),
                        ("LAKEHOUSE_LEASE_WAIT", "soon")):
        monkeypatch.setenv(name, value)
        fails(["plan", "--pending", *nowhere], f"{name}={value!r}")
        monkeypatch.delenv(name)
    lake = tmp_path / "lake"
    assert main(["generate", "--lake-root", str(lake), "--days", "1", "--rows-per-day", "5",
                 "--end-date", "2024-07-02"]) == 0
    capsys.readouterr()
    fails(["quality", "--date", "2024-07-02", "--lake-root", str(lake)], "no quality metrics for run date 2024-07-02",
          "run dates with metrics: none yet")
    (lake / "raw" / "campaigns").rename(tmp_path / "campaigns-elsewhere")
    assert main(["plan", "--pending", "--lake-root", str(lake)]) == 0  # some datasets without raw files: a note
    out = capsys.readouterr().out
    assert f"note: no raw file for dataset campaigns in {lake / 'raw' / 'campaigns'}" in out, out
