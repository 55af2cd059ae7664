"""Weekly table maintenance: `spark-submit spark_jobs/maintenance.py [--retention-hours 168] [--force]`.

Compacts every table of the conf/ specs, then vacuums it (7-day retention unless forced lower).
"""

from lakehouse.cli import entry

if __name__ == "__main__":
    entry(prefix=["maintenance"])
