"""A hand-written PySpark job doing the sales part of a day, the way a team would write it without this product:
read the day's sales CSV, keep valid rows, one row per transaction, join products and customers, aggregate by
date, store and category, write a Delta table with delta-rs. The bench times it as a whole process beside the
product on the same generated day.

    spark-submit bench/peers/sales_spark.py --raw <lake>/raw --date 2026-11-20 --out <folder> [--keep <folder>]

With `--keep`, it also keeps what the product keeps of the day, written by hand: every raw row in a bronze Delta
table and the valid rows, one per transaction, merged by key into a silver Delta table (the bench loads day 1 this
way first). That is a floor for the product's own run: the same tables without its checks, quarantine, run records
or idempotency.
"""

from __future__ import annotations

import argparse
import shutil

import pyarrow.dataset as pads
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F


def keep(df: DataFrame, table: str, partition_by: str, key: str | None = None) -> None:
    """`df`'s rows into the Delta table at `table` through staging Parquet streamed to delta-rs (never all in the
    driver): appended, or with `key` merged by it."""
    staging = f"{table}.staging"
    df.write.mode("overwrite").parquet(staging)
    rows = pads.dataset(staging, format="parquet").scanner(batch_size=8192).to_reader()
    if key and DeltaTable.is_deltatable(table):
        (DeltaTable(table).merge(rows, f"t.{key} = s.{key}", "s", "t", streamed_exec=True)
         .when_matched_update_all().when_not_matched_insert_all().execute())
    else:
        write_deltalake(table, rows, mode="append", partition_by=[partition_by], schema_mode="merge")
    shutil.rmtree(staging)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True)
    parser.add_argument("--date", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--keep")
    args = parser.parse_args()
    spark = (SparkSession.builder.appName("sales-peer").config("spark.sql.shuffle.partitions", "8")
             .config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")

    sales = spark.read.option("header", "true").csv(f"{args.raw}/sales/date={args.date}")
    if args.keep:
        sales = sales.persist()
        keep(sales.withColumn("_run_date", F.lit(args.date)), f"{args.keep}/bronze", "_run_date")
    sales = sales.select(
        "transaction_id", "store_id", "customer_id", "product_id",
        F.col("quantity").cast("int").alias("quantity"), F.col("unit_price").cast("double").alias("unit_price"),
        F.col("discount_percent").cast("double").alias("discount_percent"),
        F.to_timestamp("transaction_timestamp").alias("transaction_timestamp"))
    sales = sales.where("transaction_id IS NOT NULL AND quantity > 0 AND unit_price >= 0 "
                        "AND transaction_timestamp IS NOT NULL")
    latest = Window.partitionBy("transaction_id").orderBy(F.col("transaction_timestamp").desc())
    sales = sales.withColumn("_n", F.row_number().over(latest)).where("_n = 1").drop("_n")
    if args.keep:
        sales = sales.persist()
        keep(sales.withColumn("transaction_date", F.to_date("transaction_timestamp")), f"{args.keep}/silver",
             "transaction_date", key="transaction_id")

    products = spark.read.json(f"{args.raw}/products")
    newest = Window.partitionBy("product_id").orderBy(F.col("last_updated").desc())
    products = (products.withColumn("_n", F.row_number().over(newest)).where("_n = 1")
                .select("product_id", "category", F.col("pricing.cost_price").cast("double").alias("cost_price")))
    customers = spark.read.parquet(f"{args.raw}/customers").select("customer_id").distinct()

    day = (sales.join(customers, "customer_id", "left_semi").join(products, "product_id", "left")
           .withColumn("net_amount", F.col("quantity") * F.col("unit_price") * (1 - F.col("discount_percent") / 100))
           .withColumn("transaction_date", F.to_date("transaction_timestamp")))
    summary = day.groupBy("transaction_date", "store_id", "category").agg(
        F.count(F.lit(1)).alias("transactions"), F.sum("quantity").alias("units_sold"),
        F.countDistinct("customer_id").alias("unique_customers"), F.sum("net_amount").alias("revenue"),
        F.sum(F.col("quantity") * F.col("cost_price")).alias("cost"))
    summary = summary.withColumn("profit", F.col("revenue") - F.col("cost"))
    write_deltalake(args.out, summary.toArrow(), mode="overwrite", partition_by=["transaction_date"])
    spark.stop()


if __name__ == "__main__":
    main()
