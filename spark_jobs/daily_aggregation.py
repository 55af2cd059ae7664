"""Daily lakehouse job: `spark-submit spark_jobs/daily_aggregation.py [--date D | --start D1 --end D2]`.

A thin entry point: the library is the installed `lakehouse` package (this folder is first on sys.path under
spark-submit, so nothing here may be named like a module it imports).
"""

from lakehouse.cli import entry

if __name__ == "__main__":
    entry(prefix=["run"])
