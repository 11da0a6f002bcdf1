"""The bank's figures in Polars, for `benches/engines.rs`: one query per line read from stdin.

Reads the Parquet file named by argv[1] with a lazy scan (Polars plans it over every core it
has), computes what the bank transform computes (transactions, known balances, their exact sum
in cents, frauds) and prints one JSON line per query with the time it took in milliseconds.
"""

import json
import sys
import time

import polars as pl


def main() -> None:
    path = sys.argv[1]
    query = pl.scan_parquet(path).select(
        pl.len().alias("transactions"),
        pl.col("balance_cents").count().alias("balances"),
        pl.col("balance_cents").sum().alias("balance_cents"),
        pl.col("is_fraud").sum().alias("frauds"),
    )
    print(json.dumps({"polars": pl.__version__, "threads": pl.thread_pool_size()}), flush=True)
    for _ in sys.stdin:
        start = time.perf_counter()
        row = query.collect().row(0, named=True)
        elapsed = (time.perf_counter() - start) * 1e3
        print(json.dumps({"ms": elapsed, **row}), flush=True)


if __name__ == "__main__":
    main()
