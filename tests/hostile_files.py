"""A corpus of hostile raw files, each dropped beside valid data of the same partition.

Every case says what must become of it: `read` (its good rows load, its bad rows are quarantined), `rejected`
(set aside whole, with a cause containing `cause`), `skipped` (not a data file: listed, not read) or `ignored`
(hidden: not even listed).
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import random
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SALES_HEADER = ["transaction_id", "store_id", "customer_id", "product_id", "quantity", "unit_price",
                "discount_percent", "transaction_timestamp"]


@dataclass(frozen=True)
class Case:
    dataset: str
    name: str  # relative to the dataset's partition folder
    expect: str  # read | rejected | skipped | ignored
    cause: str = ""


def _sales_rows(tag: str, product: str, n: int = 3, day: str = "2024-06-03") -> list[list[str]]:
    return [[f"TXN-{tag}-{i}", "STORE_001", f"CUST{i + 1:05d}", product, str(i + 1), "10.00", "5",
             f"{day} 10:0{i}:00"] for i in range(n)]


def _csv(header: list[str], rows: list[list[str]], newline: str = "\n") -> bytes:
    lines = [",".join(header)] + [",".join(r) for r in rows]
    return (newline.join(lines) + newline).encode("utf-8")


def _reorder(header: list[str], rows: list[list[str]], order: list[str]) -> tuple[list[str], list[list[str]]]:
    idx = [header.index(c) for c in order]
    return order, [[r[i] for i in idx] for r in rows]


def write_sales(folder: Path, product: str) -> list[Case]:
    """Hostile CSV files for the sales dataset; `product` is a product id that exists."""
    folder.mkdir(parents=True, exist_ok=True)
    h = SALES_HEADER
    cases: list[Case] = []

    def put(name: str, data: bytes, expect: str, cause: str = "") -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        cases.append(Case("sales", name, expect, cause))

    put("extra_column.csv", _csv(h + ["payment_method"], [r + ["card"] for r in _sales_rows("EXTRA", product)]),
        "read")
    put("missing_column.csv", _csv([c for c in h if c != "discount_percent"],
                                   [r[:6] + r[7:] for r in _sales_rows("MISSING", product)]), "read")
    order = ["quantity", "transaction_timestamp", "product_id", "transaction_id", "unit_price", "store_id",
             "discount_percent", "customer_id"]
    put("reordered.csv", _csv(*_reorder(h, _sales_rows("REORDER", product), order)), "read")
    put("README", b"This folder holds the daily sales export.\n", "skipped")
    put("notes.md", b"# notes\n", "skipped")
    full = gzip.compress(_csv(h, _sales_rows("TRUNC", product, 200)))
    put("truncated.csv.gz", full[: len(full) // 2], "rejected", "gzip stream truncated")
    put("not_gzip.csv.gz", _csv(h, _sales_rows("NOTGZ", product)), "rejected", "not gzip data")
    put("gzip_without_suffix.csv", gzip.compress(_csv(h, _sales_rows("GZNOEXT", product))), "rejected",
        "gzip-compressed data")
    put("good.csv.gz", gzip.compress(_csv(h, _sales_rows("GZ", product))), "read")
    put("good.csv.bz2", bz2.compress(_csv(h, _sales_rows("BZ2", product))), "read")
    put("bom.csv", b"\xef\xbb\xbf" + _csv(h, _sales_rows("BOM", product)), "read")
    put("utf16.csv", _csv(h, _sales_rows("UTF16", product)).decode().encode("utf-16"), "rejected",
        "byte-order mark")
    put("crlf.csv", _csv(h, _sales_rows("CRLF", product), newline="\r\n"), "read")
    nul = _sales_rows("NUL", product)
    nul[0][1] = "STORE\x00001"
    put("nul_bytes.csv", _csv(h, nul), "read")
    huge = _sales_rows("HUGE", product, 1)
    huge[0][1] = "S" * 2_000_000
    put("huge_field.csv", _csv(h, huge), "read")
    put("empty.csv", b"", "read")
    put("header_only.csv", _csv(h, []), "read")
    quoted = _sales_rows("QUOTE", product, 1)
    quoted[0][1] = '"=HYPERLINK(""http://x"")"'
    put("quoted.csv", _csv(h, quoted), "read")
    # RFC 4180: a quoted field may hold line breaks (and doubled quotes); no option needed to read it
    multi = _sales_rows("MULTI", product, 3)
    multi[1][1] = '"store 001\nnorth wing, ""annex"""'
    put("multiline_field.csv", _csv(h, multi), "read")
    gz_multi = _sales_rows("GZMULTI", product, 2)
    gz_multi[0][1] = '"a\r\nb"'
    put("multiline_field.csv.gz", gzip.compress(_csv(h, gz_multi, newline="\r\n")), "read")
    # a quote that never closes: no parser can place it; the file is read line by line, the broken row
    # quarantined and the others loaded
    unbalanced = _sales_rows("UNBAL", product, 3)
    unbalanced[1][1] = '"STORE_001'
    put("unbalanced_quote.csv", _csv(h, unbalanced), "read")
    put("binary.csv", bytes(random.Random(5).randrange(256) for _ in range(4096)), "rejected")
    put("duplicate_header.csv", _csv(h[:1] + h, [r[:1] + r for r in _sales_rows("DUPH", product)]), "rejected",
        "more than once")
    put("unrelated.csv", b"a,b,c\n1,2,3\n", "rejected", "names none of the declared columns")
    latin = _csv(h, _sales_rows("LATIN", product, 1)).replace(b"STORE_001", "STORE_Café".encode("latin-1"))
    put("latin1.csv", latin, "read")
    malformed = _csv(h, _sales_rows("MALFORMED", product, 2)) + b"TXN-MALFORMED-X,STORE_001,too,many,fields,1,2,3,4,5\n"
    put("malformed_line.csv", malformed, "read")
    put("SHOUTING.CSV", _csv(h, _sales_rows("UPPER", product)), "read")
    put(".hidden.csv", _csv(h, _sales_rows("HIDDEN", product)), "ignored")
    put("_SUCCESS", b"", "ignored")
    put("nested/deeper/more.csv", _csv(h, _sales_rows("DEEP", product)), "read")
    # a folder symlink back to the partition (a loop) and a second name for one file: each file is read once
    os.symlink("..", folder / "nested" / "loop")
    os.symlink(folder / "crlf.csv", folder / "crlf_alias.csv")
    return cases


def write_products(folder: Path) -> list[Case]:
    folder.mkdir(parents=True, exist_ok=True)
    cases = []

    def put(name: str, data: bytes, expect: str, cause: str = "") -> None:
        (folder / name).write_bytes(data)
        cases.append(Case("products", name, expect, cause))

    good = ('{"product_id": "XPRD-0001", "name": "ok", "category": "toys", "brand": "Acme", '
            '"pricing": {"cost_price": 1.5, "retail_price": 2.5, "currency": "EUR"}, '
            '"last_updated": "2024-06-03 10:00:00"}\n')
    put("object_in_scalar.json", good.encode() + b'{"product_id": {"id": "XPRD-0013"}, "name": "x", '
        b'"category": "toys", "last_updated": "2024-06-03 10:00:00"}\n', "read")
    put("truncated.json.gz", gzip.compress(good.encode() * 50)[:40], "rejected", "gzip stream truncated")
    put("garbage_lines.jsonl", b"this is not json\n" + good.replace("0001", "0002").encode(), "read")
    put("empty.json", b"", "read")
    return cases


def customers_table(n: int, tag: str) -> pa.Table:
    return pa.table({
        "customer_id": [f"CUST-{tag}-{i}" for i in range(n)],
        "first_name": ["Ana"] * n, "last_name": ["Smith"] * n,
        "email": [f"c{i}@example.com" for i in range(n)], "phone": ["+15551234567"] * n,
        "registration_date": pa.array([18000 + i for i in range(n)], pa.date32()),
        "customer_tier": ["gold"] * n,
        "preferred_categories": [["toys"]] * n})


def write_customers(folder: Path) -> list[Case]:
    folder.mkdir(parents=True, exist_ok=True)
    cases = []

    def note(name: str, expect: str, cause: str = "") -> None:
        cases.append(Case("customers", name, expect, cause))

    (folder / "zero.parquet").write_bytes(b"")
    note("zero.parquet", "rejected", "empty file (0 bytes)")
    (folder / "not_parquet.parquet").write_bytes(b"customer_id,name\nC1,x\n" * 10)
    note("not_parquet.parquet", "rejected", "not a Parquet file (bad magic bytes)")
    table = customers_table(5, "STRDATE")
    table = table.set_column(5, "registration_date", pa.array(["2024-01-01"] * 5))
    pq.write_table(table, folder / "string_date.parquet")
    note("string_date.parquet", "rejected", "column registration_date: string in the file, date in the spec")
    buf = io.BytesIO()
    pq.write_table(customers_table(50, "CUT"), buf)
    (folder / "truncated.parquet").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    note("truncated.parquet", "rejected", "")
    # reordered columns, an extra column, and 64-bit integers where nothing is declared: read by name
    table = customers_table(4, "REORDER").select(["email", "customer_id", "registration_date", "first_name",
                                                  "last_name", "phone", "customer_tier", "preferred_categories"])
    table = table.append_column("loyalty_points", pa.array([1, 2, 3, 4], pa.int64()))
    pq.write_table(table, folder / "reordered.parquet")
    note("reordered.parquet", "read")
    # a footer that reads but a data page that does not: found by Spark's scan, isolated file by file
    buf = io.BytesIO()
    pq.write_table(customers_table(200, "PAGE"), buf, compression="snappy", use_dictionary=False)
    data = bytearray(buf.getvalue())
    data[4:60] = b"\xff" * 56
    (folder / "corrupt_page.parquet").write_bytes(bytes(data))
    note("corrupt_page.parquet", "rejected", "")
    return cases


def write_readings(folder_of_day: Path) -> list[Case]:
    """Parquet readings under hour= folders: nanosecond timestamps (pandas' default) and a 64-bit integer
    column declared as int, one value of which does not fit."""
    cases = []
    for hour in ("00", "13"):
        folder = folder_of_day / f"hour={hour}"
        folder.mkdir(parents=True, exist_ok=True)
        n = 3
        table = pa.table({
            "reading_id": [f"R-{hour}-{i}" for i in range(n)],
            "taken_at": pa.array([1_717_408_800_123_456_789 + i * 1_000_000_000 for i in range(n)],
                                 pa.timestamp("ns", tz="UTC")),
            "value": pa.array([10, 20, 3_000_000_000 if hour == "13" else 30], pa.int64())})
        pq.write_table(table, folder / "readings.parquet")
        cases.append(Case("readings", f"hour={hour}/readings.parquet", "read"))
    return cases
