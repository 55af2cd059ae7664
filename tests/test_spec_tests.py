"""Rule tests written in YAML (`tests:` in a dataset spec), run by `lakehouse test-specs` without a lake: the
sample specs' cases pass; a changed expectation fails with what differs, row by row; validate-config names a test
that cannot mean what it says."""

from __future__ import annotations

import shutil

import pytest

from lakehouse.api import Lakehouse
from lakehouse.cli import main
from lakehouse.errors import SpecError
from lakehouse.settings import Settings
from lakehouse.specs import load_catalog
from tests.conftest import CONF


def lake(spark, conf, tmp_path) -> Lakehouse:
    from lakehouse.tables import select_engine
    from lakehouse.tables.paths import LakeLayout

    return Lakehouse(Settings(lake_root=str(tmp_path / "no-lake"), engine="rust", conf_dir=str(conf)),
                     engine=select_engine(spark, LakeLayout(str(tmp_path / "no-lake")), "rust"))


def test_the_sample_specs_rule_tests_pass(spark, tmp_path):
    results = lake(spark, CONF, tmp_path).test_specs()
    assert {r.dataset for r in results} >= {"sales", "products", "customers"}
    assert all(r.passed for r in results), [p for r in results for p in r.problems]
    assert not (tmp_path / "no-lake").exists()  # no lake is needed, none is written


@pytest.fixture
def conf(tmp_path):
    target = tmp_path / "conf"
    shutil.copytree(CONF, target)
    return target


def edit(conf, dataset: str, old: str, new: str) -> None:
    path = conf / "datasets" / f"{dataset}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_a_changed_expectation_fails_with_what_differs(spark, conf, tmp_path, capsys):
    edit(conf, "sales", "- {transaction_id: T1, quantity: 3, net_amount: 15.00}",
         "- {transaction_id: T1, quantity: 3, net_amount: 16.00}")
    edit(conf, "customers", "- {row: 2, reasons: [email]}", "- {row: 2, reasons: [phone]}")
    results = lake(spark, conf, tmp_path).test_specs()
    failed = {r.dataset: r for r in results if not r.passed}
    assert sorted(failed) == ["customers", "sales"]
    assert failed["sales"].problems == [
        "silver rows differ (= same, ≠ different, + not expected):\n"
        "  ≠ expected {transaction_id: T1, quantity: 3, net_amount: 16.0}\n"
        "    ! got      {transaction_id: T1, quantity: 3, net_amount: 15.00}\n"
        "  = expected {transaction_id: T2, customer_id: null, net_amount: 4.0}\n"
        "      got      {transaction_id: T2, customer_id: null, net_amount: 4.00}"]
    (problem,) = failed["customers"].problems
    assert problem.startswith("quarantine differs:\n  row 2 {customer_id: C2, email: not-an-email,")
    assert problem.endswith(": expected phone, got email: email=not-an-email is not a valid email address")
    # the command: one line per case, what differs under a failed one, exit 1
    assert main(["test-specs", "--conf-dir", str(conf), "--dataset", "sales"]) == 1
    out = capsys.readouterr().out
    assert "FAILED sales: a correction later in the day replaces the sale" in out
    assert "    ≠ expected {transaction_id: T1, quantity: 3, net_amount: 16.0}" in out
    assert out.rstrip().endswith("2 rule test(s): 1 passed, 1 failed")
    assert main(["test-specs", "--conf-dir", str(conf), "--dataset", "products"]) == 0


def test_a_rule_test_that_cannot_mean_what_it_says_is_a_spec_error(spark, conf, tmp_path):
    edit(conf, "sales", "- {row: 3, reasons: [exists_in]}", "- {row: 9, reasons: [exists_in]}")
    with pytest.raises(SpecError, match="sales.yaml:41: tests.0: .*quarantine names row 9, but the test has 4"):
        load_catalog(conf)
    edit(conf, "sales", "- {row: 9, reasons: [exists_in]}", "- {row: 3, reasons: [exists_in]}")
    edit(conf, "sales", "product_id: P9999, quantity: 1,", "product_id: P9999, qantity: 1,")
    edit(conf, "sales", "- {transaction_id: T1, quantity: 3, net_amount: 15.00}",
         "- {transaction_id: T1, quantity: 3, net_amont: 15.00}")
    with pytest.raises(SpecError) as bad:
        lake(spark, conf, tmp_path).validate()
    text = str(bad.value)
    assert "tests.0.rows.2: unknown column 'qantity' (did you mean 'quantity'?)" in text
    assert "tests.1.silver.0: unknown column 'net_amont' (did you mean 'net_amount'?)" in text


def test_the_documented_example_passes(spark, conf, tmp_path):
    """docs/rules.md's example case, put in the sample sales spec in place of its own cases, passes."""
    from tests.conftest import REPO

    doc = (REPO / "docs" / "rules.md").read_text()
    block = doc.split("## Rule tests", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = conf / "datasets" / "sales.yaml"
    path.write_text(path.read_text().split("# rule tests:")[0] + block)
    (result,) = lake(spark, conf, tmp_path).test_specs(["sales"])
    assert (result.case, result.problems) == ("a correction later in the day replaces the sale", [])
