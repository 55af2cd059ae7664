"""Row checks against the time of the run (its start: the same instant for every dataset of the run)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field

from lakehouse.specs.row_checks.common import value_message
from lakehouse.specs.vocabulary import CheckContext, Failing, row_check
from lakehouse.sql import ident, instant

# a date, a timestamp, or text Spark casts to one
TEMPORAL = ("a date or timestamp column", ("date", "timestamp", "timestamp_ntz", "string"))


@row_check("not_in_future", fails_when="value later than now + `tolerance_hours` (now = the start of the run, the "
                                       "same instant for every dataset of the run)",
           examples=["{check: not_in_future, column: registration_date}"], time="loosens", needs=TEMPORAL)
def not_in_future(column: str, ctx: CheckContext, *, tolerance_hours: float = 0) -> Failing:
    limit = instant(ctx.now + dt.timedelta(hours=tolerance_hours))
    return Failing(f"CAST({ident(column)} AS TIMESTAMP) > {limit}", value_message(column, "is in the future"))


@row_check("not_older_than", fails_when="value earlier than now − `days` (now as for `not_in_future`)",
           examples=["{check: not_older_than, column: event_time, days: 30}"], time="tightens", needs=TEMPORAL)
def not_older_than(column: str, ctx: CheckContext, *, days: Annotated[float, Field(gt=0)]) -> Failing:
    limit = instant(ctx.now - dt.timedelta(days=days))
    return Failing(f"CAST({ident(column)} AS TIMESTAMP) < {limit}", value_message(column, f"is older than {days:g} days"))
