"""The batch job with polars (lazy, multi-threaded) + scikit-learn.

Same inputs, features (common.py), model and policy as batch_pandas.py.

    python batch_polars.py --inventory inventory.parquet --events events.parquet --at 1772409600 --out out.parquet

Prints one JSON line with phase timings on stdout.
"""

import json
import time

import numpy as np
import polars as pl

from common import (
    ARCHIVE,
    CLASS_NAMES,
    DAY,
    INFREQUENT,
    KNOWN_HOT,
    MIN_AGE_SECS,
    MIN_HISTORY_SECS,
    RECENT,
    SUBSET,
    WINDOWS_DAYS,
    SubsetModel,
    batch_args,
)

def main():
    args = batch_args()
    at = args.at
    t = {}
    t0 = time.perf_counter()

    inv = pl.scan_parquet(args.inventory).with_row_index("obj")
    ev = pl.scan_parquet(args.events).select("ts", "key", "tenant").filter(pl.col("ts") < at)
    complete_since = ev.select(pl.col("ts").min()).collect().item()
    coverage = complete_since if complete_since is not None and complete_since <= at else None

    age = at - pl.col("ts")
    gaps = pl.col("ts").top_k(RECENT).sort().diff().drop_nulls()
    agg = (
        ev.join(inv.select("tenant", "key", "obj"), on=["tenant", "key"], how="inner")
        .group_by("obj")
        .agg(
            pl.len().alias("count"),
            pl.col("ts").min().alias("first"),
            pl.col("ts").max().alias("last"),
            *[(age <= d * DAY).sum().alias(f"reads_{d}d") for d in WINDOWS_DAYS],
            gaps.len().alias("gap_n"),
            gaps.mean().alias("gap_mean"),
            gaps.std(ddof=0).alias("gap_std"),
            gaps.max().alias("gap_max"),
            gaps.last().alias("gap_last"),
        )
    )
    df = inv.join(agg, on="obj", how="left")

    birth = pl.coalesce(pl.col("created"), pl.col("first"), pl.lit(coverage, dtype=pl.Int64))
    birth = pl.when(birth <= at).then(birth)
    age_s = pl.when(birth.is_not_null()).then(at - birth).otherwise(0).clip(lower_bound=0)
    mod = pl.when(pl.col("modified") <= at).then(at - pl.col("modified")).otherwise(age_s)
    start = pl.lit(coverage, dtype=pl.Int64) if coverage is not None else birth
    silence = pl.coalesce(at - pl.col("last"), at - start, pl.lit(0))
    n = pl.col("count").fill_null(0)
    gm = pl.col("gap_mean").fill_null(0.0)
    path = pl.col("key").str.split("@sha256:").list.first().str.strip_chars_end("/")
    sc = pl.col("storage_class").fill_null("").str.strip_chars().str.to_uppercase()
    log_days = lambda e: (e.cast(pl.Float64).clip(lower_bound=0) / DAY).log1p()  # noqa: E731
    features = [
        log_days(age_s).alias("age_days_log"),
        (pl.col("created") <= at).fill_null(False).cast(pl.Float64).alias("age_known"),
        log_days(mod).alias("modified_days_log"),
        log_days(silence).alias("since_last_read_days_log"),
        (n == 0).cast(pl.Float64).alias("never_read"),
        pl.lit(float(np.log1p(max(at - coverage, 0) / DAY)) if coverage is not None else 0.0).alias(
            "coverage_days_log"
        ),
        *[pl.col(f"reads_{d}d").fill_null(0).cast(pl.Float64).log1p().alias(f"reads_{d}d_log") for d in WINDOWS_DAYS],
        n.cast(pl.Float64).log1p().alias("reads_total_log"),
        (pl.col("gap_n").fill_null(0) / (RECENT - 1)).alias("gap_count_frac"),
        (gm / DAY).log1p().alias("gap_mean_days_log"),
        (pl.col("gap_last").fill_null(0) / DAY).cast(pl.Float64).log1p().alias("gap_last_days_log"),
        (pl.col("gap_max").fill_null(0) / DAY).cast(pl.Float64).log1p().alias("gap_max_days_log"),
        pl.when(gm > 0)
        .then(pl.min_horizontal(pl.col("gap_std").fill_null(0.0) / gm, pl.lit(10.0)))
        .otherwise(0.0)
        .alias("gap_cv"),
        path.str.count_matches("/", literal=True).cast(pl.Float64).log1p().alias("depth_log"),
        path.str.split("/").list.last().str.len_bytes().cast(pl.Float64).log1p().alias("name_len_log"),
        pl.col("size").fill_null(0).cast(pl.Float64).log1p().alias("size_log"),
        pl.col("size").is_not_null().cast(pl.Float64).alias("size_known"),
        sc.is_in(sorted(INFREQUENT)).cast(pl.Float64).alias("storage_infrequent"),
        sc.is_in(sorted(ARCHIVE)).cast(pl.Float64).alias("storage_archive"),
        (~sc.is_in(sorted(INFREQUENT | ARCHIVE | KNOWN_HOT))).cast(pl.Float64).alias("storage_unknown"),
    ]
    born = pl.coalesce(pl.col("created"), pl.col("first"), pl.lit(coverage, dtype=pl.Int64))
    retain = (
        pl.col("legal_hold").fill_null(False)
        | (pl.col("retain_until") > at).fill_null(False)
        | (pl.col("live_references").fill_null(0) > 0)
        | born.is_null()
        | ((at - born) < MIN_AGE_SECS).fill_null(True)
    )
    no_owner = pl.col("owner").fill_null("").str.strip_chars() == ""
    frame = df.select(
        "tenant", "key", "size", "last", n.alias("reads"), retain.alias("retain"), no_owner.alias("no_owner"), *features
    ).collect()
    t["read_aggregate_features"] = time.perf_counter() - t0

    t3 = time.perf_counter()
    model = SubsetModel()
    p = model.probability(frame.select(SUBSET).to_numpy().astype(np.float64, copy=False))
    short_history = coverage is None or (at - coverage) < MIN_HISTORY_SECS
    cls = model.classes(p, frame["retain"].to_numpy(), frame["no_owner"].to_numpy() | short_history)
    t["score"] = time.perf_counter() - t3

    t4 = time.perf_counter()
    out = frame.select(
        "tenant",
        "key",
        "size",
        pl.col("last").alias("last_read"),
        "reads",
        pl.Series("probability", p),
        pl.Series("class", CLASS_NAMES[cls]),
    )
    out.sort("tenant", "key").write_parquet(args.out)
    t["write"] = time.perf_counter() - t4
    if args.features_out:
        frame.select("tenant", "key", *SUBSET).write_parquet(args.features_out)
    t["total"] = time.perf_counter() - t0
    print(json.dumps({"peer": "polars", "objects": frame.height, "secs": t}))


if __name__ == "__main__":
    main()
