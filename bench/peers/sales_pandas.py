"""The sales part of a day as a pandas script (pyarrow readers, delta-rs writer): the single-machine baseline
the bench times beside the product and the hand-written Spark job.

    python bench/peers/sales_pandas.py --raw <lake>/raw --date 2026-11-20 --out <folder>
"""

from __future__ import annotations

import argparse
import glob
import json

import pandas as pd
import pyarrow as pa
from deltalake import write_deltalake


def _json_lines(path: str) -> list[dict]:
    """The objects of a JSON-lines file; lines that are not a JSON object are skipped."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict) and value.get("product_id"):
                rows.append(value)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True)
    parser.add_argument("--date", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    sales = pd.concat([pd.read_csv(f, dtype=str, encoding_errors="replace", on_bad_lines="skip") for f in sorted(glob.glob(f"{args.raw}/sales/date={args.date}/*.csv"))])
    sales["quantity"] = pd.to_numeric(sales["quantity"], errors="coerce")
    sales["unit_price"] = pd.to_numeric(sales["unit_price"], errors="coerce")
    sales["discount_percent"] = pd.to_numeric(sales["discount_percent"], errors="coerce")
    sales["transaction_timestamp"] = pd.to_datetime(sales["transaction_timestamp"], errors="coerce")
    sales = sales[sales["transaction_id"].notna() & (sales["quantity"] > 0) & (sales["unit_price"] >= 0)
                  & sales["transaction_timestamp"].notna()]
    sales = sales.sort_values("transaction_timestamp").drop_duplicates("transaction_id", keep="last")

    products = pd.DataFrame([row for f in sorted(glob.glob(f"{args.raw}/products/*/*.json"))
                             for row in _json_lines(f)])
    products = products.sort_values("last_updated").drop_duplicates("product_id", keep="last")
    products["cost_price"] = pd.to_numeric(
        products["pricing"].map(lambda p: p.get("cost_price") if isinstance(p, dict) else None), errors="coerce")
    customers = pd.concat([pd.read_parquet(f, columns=["customer_id"])
                           for f in sorted(glob.glob(f"{args.raw}/customers/**/*.parquet", recursive=True))])

    day = sales[sales["customer_id"].isin(set(customers["customer_id"]))]
    day = day.merge(products[["product_id", "category", "cost_price"]], on="product_id", how="left")
    day["net_amount"] = day["quantity"] * day["unit_price"] * (1 - day["discount_percent"] / 100)
    day["cost"] = day["quantity"] * day["cost_price"]
    day["transaction_date"] = day["transaction_timestamp"].dt.date
    summary = day.groupby(["transaction_date", "store_id", "category"], dropna=False).agg(
        transactions=("transaction_id", "size"), units_sold=("quantity", "sum"),
        unique_customers=("customer_id", "nunique"), revenue=("net_amount", "sum"), cost=("cost", "sum"),
    ).reset_index()
    summary["profit"] = summary["revenue"] - summary["cost"]
    write_deltalake(args.out, pa.Table.from_pandas(summary, preserve_index=False), mode="overwrite",
                    partition_by=["transaction_date"])


if __name__ == "__main__":
    main()
