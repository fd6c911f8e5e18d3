"""The batch job as a data scientist would write it with pandas + scikit-learn.

Reads the same inventory + events Parquet files as `reprieve score`, computes the feature subset documented in
common.py per object, scores with the logistic model (scikit-learn), applies the policy, writes Parquet.

    python batch_pandas.py --inventory inventory.parquet --events events.parquet --at 1772409600 --out out.parquet

Prints one JSON line with phase timings on stdout.
"""

import json
import time

import numpy as np
import pandas as pd

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

    inv = pd.read_parquet(args.inventory)
    ev = pd.read_parquet(args.events, columns=["ts", "key", "tenant"])
    t["read"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    ev = ev[ev["ts"] < at]
    complete_since = ev["ts"].min() if len(ev) else None
    inv["obj"] = np.arange(len(inv))
    ev = ev.merge(inv[["tenant", "key", "obj"]], on=["tenant", "key"], how="inner")
    ev["age"] = at - ev["ts"]
    g = ev.groupby("obj")
    agg = g["ts"].agg(count="size", first="min", last="max")
    for d in WINDOWS_DAYS:
        agg[f"reads_{d}d"] = (ev["age"] <= d * DAY).groupby(ev["obj"]).sum()
    # Gaps between the 16 most recent reads.
    recent = ev.sort_values(["obj", "ts"], ascending=[True, False]).groupby("obj").head(RECENT)
    recent = recent.assign(gap=recent.groupby("obj")["ts"].diff(-1))
    gs = recent.groupby("obj")["gap"]
    agg["gap_n"] = gs.count()
    agg["gap_mean"] = gs.mean()
    agg["gap_std"] = gs.std(ddof=0)
    agg["gap_max"] = gs.max()
    agg["gap_last"] = gs.first()
    df = inv.join(agg, on="obj")
    t["aggregate"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    n = df["count"].fillna(0).to_numpy()
    first = df["first"]
    created = df["created"]
    coverage = complete_since if complete_since is not None and complete_since <= at else None
    birth = created.fillna(first)
    if coverage is not None:
        birth = birth.fillna(coverage)
    birth = birth.where(birth <= at)
    age = (at - birth).fillna(0).clip(lower=0)
    mod = (at - df["modified"]).where(df["modified"] <= at).fillna(age)
    start = birth if coverage is None else pd.Series(coverage, index=df.index, dtype="float64")
    silence = (at - df["last"]).fillna(at - start).fillna(0)
    X = pd.DataFrame(index=df.index)
    X["age_days_log"] = np.log1p(age / DAY)
    X["age_known"] = (created <= at).fillna(False).astype(float)
    X["modified_days_log"] = np.log1p(mod.clip(lower=0) / DAY)
    X["since_last_read_days_log"] = np.log1p(silence.clip(lower=0) / DAY)
    X["never_read"] = (n == 0).astype(float)
    X["coverage_days_log"] = np.log1p(max(at - coverage, 0) / DAY) if coverage is not None else 0.0
    for d in WINDOWS_DAYS:
        X[f"reads_{d}d_log"] = np.log1p(df[f"reads_{d}d"].fillna(0))
    X["reads_total_log"] = np.log1p(n)
    gap_n = df["gap_n"].fillna(0)
    gm = df["gap_mean"].fillna(0)
    X["gap_count_frac"] = gap_n / (RECENT - 1)
    X["gap_mean_days_log"] = np.log1p(gm / DAY)
    X["gap_last_days_log"] = np.log1p(df["gap_last"].fillna(0) / DAY)
    X["gap_max_days_log"] = np.log1p(df["gap_max"].fillna(0) / DAY)
    X["gap_cv"] = np.where(gm > 0, np.minimum(df["gap_std"].fillna(0) / gm.where(gm > 0, 1), 10.0), 0.0)
    path = df["key"].str.split("@sha256:", n=1).str[0].str.rstrip("/")
    X["depth_log"] = np.log1p(path.str.count("/"))
    X["name_len_log"] = np.log1p(path.str.rsplit("/", n=1).str[-1].str.encode("utf-8").str.len())
    X["size_log"] = np.log1p(df["size"].fillna(0).astype(float))
    X["size_known"] = df["size"].notna().astype(float)
    sc = df["storage_class"].fillna("").str.strip().str.upper()
    X["storage_infrequent"] = sc.isin(INFREQUENT).astype(float)
    X["storage_archive"] = sc.isin(ARCHIVE).astype(float)
    X["storage_unknown"] = (~sc.isin(INFREQUENT | ARCHIVE | KNOWN_HOT)).astype(float)
    X = X[SUBSET]
    t["features"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    model = SubsetModel()
    p = model.probability(X.to_numpy(dtype=np.float64))
    born = created.fillna(first)
    if coverage is not None:
        born = born.fillna(coverage)
    retain = (
        df["legal_hold"].fillna(False).to_numpy(bool)
        | (df["retain_until"] > at).fillna(False).to_numpy(bool)
        | (df["live_references"].fillna(0) > 0).to_numpy(bool)
        | (born.isna() | ((at - born) < MIN_AGE_SECS)).to_numpy(bool)
    )
    short_history = coverage is None or (at - coverage) < MIN_HISTORY_SECS
    no_owner = df["owner"].fillna("").str.strip().eq("").to_numpy(bool)
    cls = model.classes(p, retain, no_owner | short_history)
    t["score"] = time.perf_counter() - t3

    t4 = time.perf_counter()
    out = pd.DataFrame(
        {
            "tenant": df["tenant"],
            "key": df["key"],
            "size": df["size"],
            "last_read": df["last"],
            "reads": n.astype(np.int64),
            "probability": p,
            "class": CLASS_NAMES[cls],
        }
    )
    out.sort_values(["tenant", "key"]).to_parquet(args.out, index=False)
    t["write"] = time.perf_counter() - t4
    if args.features_out:
        X.assign(tenant=df["tenant"], key=df["key"]).to_parquet(args.features_out, index=False)
    t["total"] = time.perf_counter() - t0
    print(json.dumps({"peer": "pandas", "objects": len(df), "events": int(len(ev)), "secs": t}))


if __name__ == "__main__":
    main()
