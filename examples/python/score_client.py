"""Score a few objects against a local `reprieve serve` and print the verdicts.

Usage (see README.md beside this file):
    python -m grpc_tools.protoc -I ../../proto --python_out=. --grpc_python_out=. reprieve/v1/reprieve.proto
    python score_client.py [--addr 127.0.0.1:50051]
"""

import argparse
import time

import grpc

from reprieve.v1 import reprieve_pb2 as pb
from reprieve.v1 import reprieve_pb2_grpc as rpc

DAY = 86_400


def sample_objects(now: int) -> list:
    """An idle old image, a monthly job's image, and one under legal hold."""
    logging_since = now - 80 * DAY
    return [
        pb.ObjectRecord(
            key="cdn/campaigns/spring/banner_300x200.png",
            tenant="web",
            size_bytes=48_213,
            created_unix=now - 400 * DAY,
            owner="team-web",
            storage_class=pb.STORAGE_CLASS_STANDARD,
            history=pb.AccessHistory(access_unix=[now - 70 * DAY], complete_since_unix=logging_since),
        ),
        pb.ObjectRecord(
            key="jobs/monthly/report-renderer.png",
            tenant="web",
            size_bytes=1_204_332,
            created_unix=now - 400 * DAY,
            owner="team-data",
            storage_class=pb.STORAGE_CLASS_STANDARD,
            history=pb.AccessHistory(
                access_unix=[now - m * 30 * DAY + 3600 for m in range(2, 0, -1)],
                complete_since_unix=logging_since,
            ),
        ),
        pb.ObjectRecord(
            key="legal/evidence/scan-0042.jpg",
            tenant="web",
            size_bytes=3_500_000,
            created_unix=now - 700 * DAY,
            owner="legal",
            storage_class=pb.STORAGE_CLASS_STANDARD,
            legal_hold=True,
            history=pb.AccessHistory(complete_since_unix=logging_since),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:50051")
    args = parser.parse_args()
    now = int(time.time())
    with grpc.insecure_channel(args.addr) as channel:
        scorer = rpc.ReuseScorerStub(channel)
        response = scorer.Score(pb.ScoreRequest(objects=sample_objects(now), at_unix=now), timeout=10)
        print(f"model {response.model_version}, scored at {response.at_unix}")
        for v in response.verdicts:
            reasons = ", ".join(pb.ReasonCode.Name(r).removeprefix("REASON_CODE_") for r in v.reasons)
            verdict = pb.VerdictClass.Name(v.verdict_class).removeprefix("VERDICT_CLASS_")
            print(f"{v.key:45s} {verdict:17s} P(reuse)={v.reuse_probability:.4f}  [{reasons}]")
            for c in v.top_contributions[:3]:
                print(f"    {c.feature:32s} value={c.value:8.3f}  contribution={c.contribution:+.3f}")
        try:
            scorer.Score(pb.ScoreRequest(objects=[pb.ObjectRecord(key="", size_bytes=-1)]), timeout=10)
        except grpc.RpcError as e:
            print(f"a bad request is refused: {e.code().name}: {e.details()}")


if __name__ == "__main__":
    main()
