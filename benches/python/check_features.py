"""Checks the peers' feature definitions against ours on the same files.

    python check_features.py OURS.csv PEER_features.parquet [...]   # OURS.csv from `cargo bench --bench peer_check`

For every object and every feature of the subset: |ours - peer| <= 1e-9 (absolute) or 1e-9 relative. Also checks
common.features_of_history (the grpcio peer's per-object path) on the first objects when given
--events EVENTS.parquet --inventory INVENTORY.parquet --at AT.
"""

import argparse
import sys

import numpy as np
import polars as pl

from common import SUBSET, depth_and_name_len, features_of_history, storage_flags


def compare(ours, peer, name):
    j = ours.join(peer, on=["tenant", "key"], how="inner", suffix="_peer")
    if j.height != ours.height:
        print(f"{name}: {ours.height - j.height} objects missing")
        return False
    ok = True
    for f in SUBSET:
        a = j[f].cast(pl.Float64).to_numpy()
        b = j[f + "_peer"].cast(pl.Float64).to_numpy()
        bad = ~np.isclose(a, b, rtol=1e-9, atol=1e-9)
        if bad.any():
            ok = False
            i = int(np.argmax(bad))
            print(f"{name}: {f}: {int(bad.sum())} of {len(a)} differ, e.g. {j['key'][i]}: ours {a[i]!r} peer {b[i]!r}")
    print(f"{name}: {j.height} objects x {len(SUBSET)} features {'agree' if ok else 'DISAGREE'}")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours")
    ap.add_argument("peers", nargs="*")
    ap.add_argument("--events")
    ap.add_argument("--inventory")
    ap.add_argument("--at", type=int)
    ap.add_argument("--sample", type=int, default=2000)
    args = ap.parse_args()
    ours = pl.read_csv(args.ours, infer_schema_length=0).with_columns([pl.col(f).cast(pl.Float64) for f in SUBSET])
    ok = all([compare(ours, pl.read_parquet(p), p) for p in args.peers])
    if args.events:
        inv = pl.read_parquet(args.inventory).head(args.sample)
        ev = pl.read_parquet(args.events, columns=["ts", "key", "tenant"]).filter(pl.col("ts") < args.at)
        since = ev["ts"].min()
        reads = ev.join(inv.select("tenant", "key"), on=["tenant", "key"]).group_by("tenant", "key").agg(pl.col("ts"))
        reads = {(r["tenant"], r["key"]): r["ts"] for r in reads.iter_rows(named=True)}
        rows = []
        for r in inv.iter_rows(named=True):
            x = features_of_history(reads.get((r["tenant"], r["key"]), []), args.at, r["created"], r["modified"], since)
            d, n = depth_and_name_len(r["key"])
            size = r["size"]
            x += [np.log1p(d), np.log1p(n), np.log1p(size or 0), 1.0 if size is not None else 0.0]
            x += storage_flags(r["storage_class"])
            rows.append([r["tenant"], r["key"], *map(float, x)])
        peer = pl.DataFrame(rows, schema=["tenant", "key", *SUBSET], orient="row")
        ok &= compare(ours.join(peer.select("tenant", "key"), on=["tenant", "key"]), peer, "grpc peer path")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
