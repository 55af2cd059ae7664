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
