"""Checks that a peer read the same data as `reprieve score`: per object, the same read count and last read.

    python crosscheck.py OURS_scores.parquet PEER_out.parquet [PEER2_out.parquet ...]

Also prints how often the verdict classes agree (they need not: the peers use a 24-feature subset of the model).
"""

import sys

import polars as pl


def main():
    ours = pl.read_parquet(sys.argv[1], columns=["tenant", "key", "reads", "last_read", "class"])
    for path in sys.argv[2:]:
        peer = pl.read_parquet(path, columns=["tenant", "key", "reads", "last_read", "class"])
        j = ours.join(peer, on=["tenant", "key"], how="full", suffix="_peer", coalesce=True)
        missing = j.filter(pl.col("reads").is_null() | pl.col("reads_peer").is_null()).height
        reads_diff = j.filter(pl.col("reads").cast(pl.Int64) != pl.col("reads_peer").cast(pl.Int64)).height
        last_diff = j.filter(
            pl.col("last_read").cast(pl.Int64).fill_null(-1) != pl.col("last_read_peer").cast(pl.Int64).fill_null(-1)
        ).height
        agree = j.filter(pl.col("class") == pl.col("class_peer")).height / max(j.height, 1)
        ok = missing == 0 and reads_diff == 0 and last_diff == 0
        print(
            f"{path}: {j.height} objects, missing {missing}, read-count mismatches {reads_diff}, "
            f"last-read mismatches {last_diff}, class agreement {agree:.1%} -> {'OK' if ok else 'MISMATCH'}"
        )
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
