"""Deterministic retail sample data with realistic defects, written into the raw zone in each source's format.

Sources and layouts:
  sales        CSV      raw/sales/date=YYYY-MM-DD/
  inventory    CSV      raw/inventory/year=YYYY/month=MM/day=DD/
  products     JSON     raw/products/date=YYYY-MM-DD/          (nested pricing; full catalog day 1, then changes)
  customers    Parquet  raw/customers/year=YYYY/month=MM/day=DD/
  campaigns    JSON     raw/campaigns/date=YYYY-MM-DD/         (nested performance)
Defects: null ids, duplicate keys (corrections with a later timestamp), bad emails and phones, negative
quantities, unknown product ids, a malformed CSV line per sales day, one line in a non-UTF-8 encoding, late
rows for earlier dates in a later day's partition, one day with an extra column, campaigns ending before they
start. The same seed and end date always give the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

CATEGORIES = ["electronics", "grocery", "apparel", "home", "toys", "sports", "beauty", "books"]
BRANDS = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay"]
TIERS = ["bronze", "silver", "gold", "platinum"]
FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ines", "José", "Kofi", "Lena"]
LAST = ["Smith", "García", "Müller", "Okafor", "Rossi", "Tanaka", "Nowak", "Silva", "Dubois", "Larsen"]
SALES_HEADER = ["transaction_id", "store_id", "customer_id", "product_id", "quantity", "unit_price",
                "discount_percent", "transaction_timestamp"]
INVENTORY_HEADER = ["update_id", "store_id", "product_id", "quantity_change", "update_timestamp", "update_type"]


@dataclass
class GenerateResult:
    days: list[dt.date]
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    def add(self, dataset: str, path: Path, rows: int) -> None:
        self.files.append(path)
        self.rows[dataset] = self.rows.get(dataset, 0) + rows


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random("-".join(map(str, (seed, *parts))))


def _ts(day: dt.date, rng: random.Random) -> dt.datetime:
    return dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randrange(86400))


class RetailGenerator:
    def __init__(self, root: str | Path, days: int, rows_per_day: int, seed: int = 42,
                 end_date: dt.date | None = None, products: int = 200, customers: int = 1000,
                 stores: int = 20) -> None:
        if days < 1 or rows_per_day < 1:
            raise ValueError("days and rows_per_day must be at least 1")
        self.raw = Path(root) / "raw"
        self.seed = seed
        end = end_date or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
        self.days = [end - dt.timedelta(days=days - 1 - i) for i in range(days)]
        self.rows_per_day = rows_per_day
        self.n_products = products
        self.n_customers = customers
        self.stores = [f"STORE_{i:03d}" for i in range(1, stores + 1)]
        # the middle day's sales file carries an extra column (schema drift)
        self.drift_day = self.days[len(self.days) // 2] if len(self.days) > 1 else None
        self.bad_encoding_day = self.days[-1]
        self.catalog = self._catalog()

    # ------------------------------------------------------------------ reference data

    def _catalog(self) -> list[dict[str, Any]]:
        rng = _rng(self.seed, "catalog")
        out = []
        for i in range(1, self.n_products + 1):
            cost = round(rng.uniform(1, 300), 2)
            out.append({"product_id": f"PROD-{i:05d}", "name": f"{rng.choice(BRANDS)} item {i}",
                        "category": rng.choice(CATEGORIES), "brand": rng.choice(BRANDS),
                        "cost_price": cost, "retail_price": round(cost * rng.uniform(1.1, 1.8), 2)})
        return out

    def _path(self, dataset: str, layout: str, day: dt.date, name: str) -> Path:
        folder = self.raw / dataset / layout.format(date=day.isoformat(), yyyy=f"{day.year:04d}",
                                                    mm=f"{day.month:02d}", dd=f"{day.day:02d}")
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    # ------------------------------------------------------------------ sources

    def products(self, day: dt.date, index: int, result: GenerateResult) -> None:
        rng = _rng(self.seed, "products", day)
        if index == 0:
            rows = [dict(p) for p in self.catalog]
        else:
            rows = []
            # now and then a product moves to another category or its cost changes: what a dimension with history
            # keeps (a stream of its own, so the other datasets' rows stay as they were)
            changes = _rng(self.seed, "product_changes", day)
            for p in rng.sample(self.catalog, k=min(5, len(self.catalog))):
                p["retail_price"] = round(p["retail_price"] * rng.uniform(0.9, 1.1), 2)
                if changes.random() < 0.3:
                    p["category"] = changes.choice([c for c in CATEGORIES if c != p["category"]])
                if changes.random() < 0.3:
                    p["cost_price"] = round(p["cost_price"] * changes.uniform(0.9, 1.1), 2)
                rows.append(dict(p))
        lines = []
        for p in rows:
            updated = _ts(day, rng)
            lines.append(json.dumps({
                "product_id": p["product_id"], "name": p["name"], "category": p["category"], "brand": p["brand"],
                "pricing": {"cost_price": p["cost_price"], "retail_price": p["retail_price"], "currency": "EUR"},
                "last_updated": updated.isoformat(sep=" ")}, ensure_ascii=False))
        if index == 1:
            lines.append('{"product_id": "PROD-BROKEN", "name": "truncated record", "pricing": {')
        path = self._path("products", "date={date}", day, "products.json")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result.add("products", path, len(lines))

    def customers(self, day: dt.date, index: int, result: GenerateResult) -> None:
        rng = _rng(self.seed, "customers", day)
        ids: list[int]
        if index == 0:
            ids = list(range(1, self.n_customers + 1))
        else:
            new = range(self.n_customers + (index - 1) * 20 + 1, self.n_customers + index * 20 + 1)
            ids = [*rng.sample(range(1, self.n_customers + 1), k=10), *new]
        rows = []
        for n in ids:
            crng = _rng(self.seed, "customer", n)
            first, last = crng.choice(FIRST), crng.choice(LAST)
            local = unicodedata.normalize("NFKD", f"{first}.{last}{n}").encode("ascii", "ignore").decode()
            email: str | None = f"{local}@example.com".lower()
            phone = f"+1-555-{crng.randrange(1000, 9999)}-{crng.randrange(1000, 9999)}"
            roll = rng.random()
            if roll < 0.03:
                email = f"{local}@example.com".lower().replace("@", " at ")
            elif roll < 0.05:
                phone = "call me"
            elif roll < 0.06:
                email = None
            rows.append({
                "customer_id": f"CUST{n:05d}", "first_name": first, "last_name": last, "email": email,
                "phone": phone, "registration_date": day - dt.timedelta(days=crng.randrange(0, 900)),
                "customer_tier": "diamond" if roll > 0.99 else rng.choice(TIERS),
                "preferred_categories": crng.sample(CATEGORIES, k=crng.randrange(1, 4))})
        table = pa.Table.from_pylist(rows, schema=pa.schema([
            ("customer_id", pa.string()), ("first_name", pa.string()), ("last_name", pa.string()),
            ("email", pa.string()), ("phone", pa.string()), ("registration_date", pa.date32()),
            ("customer_tier", pa.string()), ("preferred_categories", pa.list_(pa.string()))]))
        path = self._path("customers", "year={yyyy}/month={mm}/day={dd}", day, "customers.parquet")
        pq.write_table(table, path)
        result.add("customers", path, len(rows))

    def sales(self, day: dt.date, index: int, result: GenerateResult) -> None:
        rng = _rng(self.seed, "sales", day)
        drift = day == self.drift_day
        header = SALES_HEADER + (["payment_method"] if drift else [])
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        customers = self.n_customers + index * 20
        written = 0
        for i in range(self.rows_per_day):
            product = rng.choice(self.catalog)
            product_id = product["product_id"] if rng.random() >= 0.01 else f"PROD-9{rng.randrange(9999):04d}"
            late = index > 0 and rng.random() < 0.02
            when = _ts(day - dt.timedelta(days=rng.randint(1, min(index, 3))) if late else day, rng)
            quantity = rng.randint(1, 10) if rng.random() >= 0.005 else -rng.randint(1, 5)
            discount = rng.choice(["0", "5", "10", "15", ""])
            store = rng.choice(self.stores)
            row = [f"TXN-{day:%Y%m%d}-{i:07d}", f"  {store} " if rng.random() < 0.05 else store,
                   "" if rng.random() < 0.03 else f"CUST{rng.randint(1, customers):05d}", product_id,
                   quantity, f"{product['retail_price']:.2f}", discount, when.isoformat(sep=" ")]
            if drift:
                row.append(rng.choice(["card", "cash", "mobile"]))
            writer.writerow(row)
            written += 1
            if rng.random() < 0.01:  # a correction of the same transaction, later, with another quantity
                corrected = list(row)
                corrected[4] = max(1, int(quantity) + 1)
                corrected[7] = (when + dt.timedelta(minutes=5)).isoformat(sep=" ")
                writer.writerow(corrected)
                written += 1
        writer.writerow([f"TXN-{day:%Y%m%d}-BROKEN", "STORE_001", "only three fields"])
        written += 1
        data = buf.getvalue().encode("utf-8")
        if day == self.bad_encoding_day:
            # the store field holds latin-1 bytes: é as 0xE9 is not valid UTF-8
            line = (f"TXN-{day:%Y%m%d}-LATIN1,STORE_Caf\u00e9,CUST00001,PROD-00001,1,9.99,0,"
                    f"{day.isoformat()} 12:00:00" + (",card" if drift else "") + "\n")
            bad = line.encode("latin-1")
            data += bad
            written += 1
        path = self._path("sales", "date={date}", day, "sales.csv")
        path.write_bytes(data)
        result.add("sales", path, written)

    def inventory(self, day: dt.date, index: int, result: GenerateResult) -> None:
        rng = _rng(self.seed, "inventory", day)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(INVENTORY_HEADER)
        n = max(1, self.rows_per_day // 4)
        for i in range(n):
            kind = rng.choices(["restock", "sale", "adjustment", "return", "stolen?"], [30, 50, 10, 9, 1])[0]
            change = rng.randint(1, 50) if kind in ("restock", "return") else -rng.randint(1, 20)
            writer.writerow([f"UPD-{day:%Y%m%d}-{i:06d}", rng.choice(self.stores),
                             "" if rng.random() < 0.01 else rng.choice(self.catalog)["product_id"], change,
                             _ts(day, rng).isoformat(sep=" "), kind])
        path = self._path("inventory", "year={yyyy}/month={mm}/day={dd}", day, "inventory.csv")
        path.write_text(buf.getvalue(), encoding="utf-8")
        result.add("inventory", path, n)

    def campaigns(self, day: dt.date, index: int, result: GenerateResult) -> None:
        rng = _rng(self.seed, "campaigns", day)
        lines = []
        for i in range(3):
            start = day - dt.timedelta(days=rng.randrange(0, 10))
            end = start + dt.timedelta(days=rng.randrange(1, 30))
            if i == 2 and index % 2 == 1:
                end = start - dt.timedelta(days=2)  # ends before it starts
            impressions = rng.randrange(1000, 100000)
            clicks = rng.randrange(0, impressions // 10)
            conversions = rng.randrange(0, max(1, clicks // 5))
            lines.append(json.dumps({
                "campaign_id": f"CMP-{day:%Y%m%d}-{i}", "name": f"{rng.choice(CATEGORIES).title()} week",
                "start_date": start.isoformat(), "end_date": end.isoformat(),
                "target_categories": rng.sample(CATEGORIES, k=2),
                "performance": {"impressions": impressions, "clicks": clicks, "conversions": conversions,
                                "revenue": round(conversions * rng.uniform(10, 80), 2)}}))
        path = self._path("campaigns", "date={date}", day, "campaigns.json")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result.add("campaigns", path, len(lines))

    def occupied_days(self) -> list[dt.date]:
        """The days to generate that already have raw files (under either partition layout)."""
        if not self.raw.exists():
            return []
        found = set()
        for f in self.raw.rglob("*"):
            if not f.is_file():
                continue
            text = f.relative_to(self.raw).as_posix()
            for day in self.days:
                if f"date={day}/" in text or f"year={day:%Y}/month={day:%m}/day={day:%d}/" in text:
                    found.add(day)
        return sorted(found)

    def write(self) -> GenerateResult:
        result = GenerateResult(self.days)
        for index, day in enumerate(self.days):
            for source in (self.products, self.customers, self.sales, self.inventory, self.campaigns):
                source(day, index, result)
        return result


def raw_zone_empty(root: str | Path) -> bool:
    raw = Path(root) / "raw"
    return not raw.exists() or not any(p.is_file() for p in raw.rglob("*"))
