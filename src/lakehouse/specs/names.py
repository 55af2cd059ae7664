"""Column naming rules shared by the specs, the reader and the typed cast."""

from __future__ import annotations

import re


def snake_case(name: str) -> str:
    """"Order ID" -> order_id, "TotalEUR" -> total_eur."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
