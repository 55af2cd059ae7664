"""What a multi-day run prints: progress lines as each dataset and gold table finishes, in order; a summary per
run date whose columns line up whatever the names' lengths; totals, elapsed time and a legend."""

from __future__ import annotations

import datetime as dt
import re
import shutil

from lakehouse.cli import main
from lakehouse.report import RUN_LEGEND, table
from lakehouse.sample.retail import RetailGenerator
from tests.conftest import CONF

END = dt.date(2024, 7, 3)


def test_table_columns_line_up_for_any_width():
    lines = table(["name", "rows"], [["a", 1], ["a_much_longer_dataset_name", 123456], ["b", None]], right=[False, True])
    assert len({len(line) for line in lines}) == 1
    assert [line.split() for line in lines] == [["name", "rows"], ["a", "1"], ["a_much_longer_dataset_name", "123456"],
                                                ["b", "-"]]


def test_multi_day_run_prints_progress_in_order_and_aligned_summaries(spark, tmp_path, capsys):
    root = tmp_path / "lake"
    RetailGenerator(root, days=3, rows_per_day=40, seed=5, end_date=END, products=10, customers=20, stores=3).write()
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    # a dataset with a long name: the summary's columns still line up
    spec = (conf / "datasets" / "campaigns.yaml").read_text().replace("name: campaigns",
                                                                      "name: marketing_campaigns_of_the_quarter")
    (conf / "datasets" / "campaigns.yaml").write_text(spec)
    code = main(["run", "--start", str(END - dt.timedelta(days=2)), "--end", str(END), "--lake-root", str(root),
                 "--engine", "rust", "--conf-dir", str(conf)])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    progress = [line.strip() for line in lines if re.match(r"\s+\[\d/3\] ", line)]
    # the three days load as one batch: one line per dataset and date (each dataset's dates in order), then one
    # per gold table, built once for every date the batch touched
    assert len(progress) == 3 * 5 + 2
    datasets, golds = progress[:15], progress[15:]
    for i in range(5):
        lines_of = datasets[3 * i:3 * i + 3]
        assert [p.split()[:2] for p in lines_of] == [
            [f"[{d + 1}/3]", str(END - dt.timedelta(days=2 - d))] for d in range(3)], lines_of
        assert len({p.split()[2] for p in lines_of}) == 1 and " gold " not in lines_of[0]
    assert all(p.startswith(f"[3/3] {END} gold ") for p in golds), golds
    assert "marketing_campaigns_of_the_quarter: ok" in out
    # each summary: the dataset table's rows as wide as its header (numbers right-aligned under it)
    headers = [i for i, line in enumerate(lines) if line.split()[:2] == ["dataset", "status"]]
    assert len(headers) == 3
    for h in headers:
        rows = lines[h + 1:h + 6]
        assert all(len(r) == len(lines[h]) for r in rows), "\n".join(lines[h:h + 6])
        assert "marketing_campaigns_of_the_quarter" in [r.split()[0] for r in rows]
    # totals with the elapsed time, then the legend
    total = next(line for line in lines if line.startswith("3 run date(s), 0 failed; rows read "))
    assert re.search(r"; \d+\.\d s$", total)
    assert lines[lines.index(total) + 1] == RUN_LEGEND
