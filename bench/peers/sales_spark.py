"""A hand-written PySpark job doing the sales part of a day, the way a team would write it without this product:
read the day's sales CSV, keep valid rows, one row per transaction, join products and customers, aggregate by
date, store and category, write a Delta table with delta-rs. The bench times it as a whole process beside the
product on the same generated day.

    spark-submit bench/peers/sales_spark.py --raw <lake>/raw --date 2026-11-20 --out <folder> [--keep <folder>]
    spark-submit --jars <delta jars> bench/peers/sales_spark.py ... --keep <folder> --writer delta-spark
    spark-submit bench/peers/sales_spark.py ... --keep <folder> --every-table

With `--keep`, it also keeps what the product keeps of the day, written by hand: every raw row in a bronze Delta
table and the valid rows, one per transaction, merged by key into a silver Delta table (the bench loads day 1 this
way first). That is a floor for the product's own run: the same tables without its checks, quarantine, run records
or idempotency. `--writer delta-spark` writes those tables with delta-spark instead of delta-rs (an append to
bronze, a MERGE by key into silver, and the day's gold MERGEd by date, store and category into `<keep>/gold`):
the floor for the product on its jvm engine.

With `--every-table` as well, it keeps every table the product's sample conf keeps, not only sales': the day's
inventory, products, customers and campaigns each appended to a bronze table and merged by key (the latest row per
key, typed, the rows that would fail an error-level check left out) into a silver table, and the inventory
movement of the day aggregated beside the sales summary. Products and customers are merged in place (the product
keeps their history) and nothing is quarantined: still a floor.
"""

from __future__ import annotations

import argparse
import shutil

import pyarrow.dataset as pads
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F


def keep(df: DataFrame, table: str, partition_by: str, key: str | list[str] | None = None,
         writer: str = "delta-rs") -> None:
    """`df`'s rows into the Delta table at `table`: appended, or with `key` merged by it. delta-rs takes them
    through staging Parquet streamed from disk (never all in the driver); delta-spark writes from the executors."""
    keys = [key] if isinstance(key, str) else list(key or [])
    if writer == "delta-spark":
        from delta.tables import DeltaTable as SparkDeltaTable

        spark = df.sparkSession
        if keys and SparkDeltaTable.isDeltaTable(spark, table):
            (SparkDeltaTable.forPath(spark, table).alias("t")
             .merge(df.alias("s"), " AND ".join(f"t.{k} <=> s.{k}" for k in keys))
             .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
        else:
            df.write.format("delta").mode("append").option("mergeSchema", "true").partitionBy(partition_by).save(table)
        return
    key = keys[0] if keys else None
    staging = f"{table}.staging"
    df.write.mode("overwrite").parquet(staging)
    rows = pads.dataset(staging, format="parquet").scanner(batch_size=8192).to_reader()
    if key and DeltaTable.is_deltatable(table):
        (DeltaTable(table).merge(rows, f"t.{key} = s.{key}", "s", "t", streamed_exec=True)
         .when_matched_update_all().when_not_matched_insert_all().execute())
    else:
        write_deltalake(table, rows, mode="append", partition_by=[partition_by], schema_mode="merge")
    shutil.rmtree(staging)


def latest(df: DataFrame, key: str, order: str | None) -> DataFrame:
    """One row per `key`: the latest by `order` when given, else any."""
    if order is None:
        return df.dropDuplicates([key])
    window = Window.partitionBy(key).orderBy(F.col(order).desc())
    return df.withColumn("_n", F.row_number().over(window)).where("_n = 1").drop("_n")


def keep_other_tables(spark: SparkSession, raw: str, day: str, kept: str, out: str, writer: str) -> None:
    """Bronze and silver of the day's inventory, products, customers and campaigns, and the day's inventory
    movement (see the module's docstring)."""
    y, m, d = day.split("-")
    dated = f"year={y}/month={m}/day={d}"
    products = spark.read.json(f"{raw}/products/date={day}").select(
        "product_id", "name", "category", "brand", "pricing", F.to_timestamp("last_updated").alias("last_updated"))
    dimensions = {
        "products": (products, "product_id", "last_updated"),
        "customers": (spark.read.parquet(f"{raw}/customers/{dated}"), "customer_id", None),
        "campaigns": (spark.read.json(f"{raw}/campaigns/date={day}"), "campaign_id", None),
    }
    for name, (rows, key, order) in dimensions.items():
        rows = rows.persist()
        keep(rows.withColumn("_run_date", F.lit(day)), f"{kept}/bronze_{name}", "_run_date", writer=writer)
        keep(latest(rows.where(F.col(key).isNotNull()), key, order).withColumn("_run_date", F.lit(day)),
             f"{kept}/silver_{name}", "_run_date", key=key, writer=writer)
    # the exists_in check: the products silver holds after the day's merge
    known = spark.createDataFrame(DeltaTable(f"{kept}/silver_products").to_pyarrow_table(
        columns=["product_id"]).to_pandas())
    inventory = spark.read.option("header", "true").csv(f"{raw}/inventory/{dated}").persist()
    keep(inventory.withColumn("_run_date", F.lit(day)), f"{kept}/bronze_inventory", "_run_date", writer=writer)
    inventory = inventory.select(
        "update_id", F.trim("store_id").alias("store_id"), F.trim("product_id").alias("product_id"),
        F.col("quantity_change").cast("int").alias("quantity_change"),
        F.to_timestamp("update_timestamp").alias("update_timestamp"),
        F.lower(F.trim("update_type")).alias("update_type"))
    inventory = (inventory.where("update_id IS NOT NULL AND quantity_change IS NOT NULL AND update_timestamp IS NOT "
                                 "NULL AND update_type IN ('restock', 'sale', 'adjustment', 'return')")
                 .join(F.broadcast(known), "product_id", "left_semi")
                 .withColumn("update_date", F.to_date("update_timestamp")))
    inventory = latest(inventory, "update_id", "update_timestamp").persist()
    keep(inventory, f"{kept}/silver_inventory", "update_date", key="update_id", writer=writer)
    movement = inventory.groupBy("update_date", "store_id", "product_id").agg(
        F.sum("quantity_change").alias("net_quantity_change"),
        F.sum(F.when(F.col("update_type") == "restock", F.col("quantity_change")).otherwise(0)).alias(
            "units_restocked"),
        (-F.sum(F.when(F.col("update_type") == "sale", F.col("quantity_change")).otherwise(0))).alias("units_sold"),
        F.count(F.lit(1)).alias("updates"))
    if writer == "delta-spark":
        keep(movement, f"{kept}/gold_inventory", "update_date", ["update_date", "store_id", "product_id"],
             writer=writer)
    else:
        write_deltalake(f"{out}-inventory", movement.toArrow(), mode="overwrite", partition_by=["update_date"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True)
    parser.add_argument("--date", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--keep")
    parser.add_argument("--writer", choices=("delta-rs", "delta-spark"), default="delta-rs")
    parser.add_argument("--every-table", action="store_true")
    args = parser.parse_args()
    builder = (SparkSession.builder.appName("sales-peer").config("spark.sql.shuffle.partitions", "8")
               .config("spark.ui.enabled", "false"))
    if args.writer == "delta-spark":
        builder = (builder.config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
                   .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
                   .config("spark.databricks.delta.properties.defaults.enableDeletionVectors", "false")
                   # log replay over two tasks, not 50, as the product sets it on two cores (fair to the peer)
                   .config("spark.databricks.delta.snapshotPartitions", "2"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")

    if args.keep and args.every_table:  # the dimensions first, as the product loads them before the facts
        keep_other_tables(spark, args.raw, args.date, args.keep, args.out, args.writer)
    sales = spark.read.option("header", "true").csv(f"{args.raw}/sales/date={args.date}")
    if args.keep:
        sales = sales.persist()
        keep(sales.withColumn("_run_date", F.lit(args.date)), f"{args.keep}/bronze", "_run_date",
             writer=args.writer)
    sales = sales.select(
        "transaction_id", "store_id", "customer_id", "product_id",
        F.col("quantity").cast("int").alias("quantity"), F.col("unit_price").cast("double").alias("unit_price"),
        F.col("discount_percent").cast("double").alias("discount_percent"),
        F.to_timestamp("transaction_timestamp").alias("transaction_timestamp"))
    sales = sales.where("transaction_id IS NOT NULL AND quantity > 0 AND unit_price >= 0 "
                        "AND transaction_timestamp IS NOT NULL")
    sales = latest(sales, "transaction_id", "transaction_timestamp")
    if args.keep:
        sales = sales.persist()
        keep(sales.withColumn("transaction_date", F.to_date("transaction_timestamp")), f"{args.keep}/silver",
             "transaction_date", key="transaction_id", writer=args.writer)

    products = spark.read.json(f"{args.raw}/products")
    products = (latest(products, "product_id", "last_updated")
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
    if args.writer == "delta-spark":  # gold kept too, MERGEd by its grain
        keep(summary, f"{args.keep}/gold", "transaction_date", ["transaction_date", "store_id", "category"],
             writer=args.writer)
    else:
        write_deltalake(args.out, summary.toArrow(), mode="overwrite", partition_by=["transaction_date"])
    spark.stop()


if __name__ == "__main__":
    main()
