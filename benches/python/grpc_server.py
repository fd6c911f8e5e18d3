"""A grpcio ReuseScorer server wrapping the scikit-learn model: the service a data scientist would stand up.

Stubs are generated at start-up from proto/reprieve/v1/reprieve.proto with grpcio-tools into a temporary
directory (nothing generated is committed). Score and ScoreStream compute the feature subset of common.py from
each request's records (raw read times, as our server does), score the batch with predict_proba and answer with
verdicts (class, probability, hard-rule and score reasons, model version; no contributions, no verdict ids).

    python grpc_server.py --port 50061 [--workers 8]
"""

import argparse
import os
import sys
import tempfile
import time
from concurrent import futures

import numpy as np

from common import (
    MIN_AGE_SECS,
    MIN_HISTORY_SECS,
    REPO,
    SubsetModel,
    depth_and_name_len,
    features_of_history,
    storage_flags,
)


def load_stubs():
    from grpc_tools import protoc
    import grpc_tools

    out = tempfile.mkdtemp(prefix="reprieve-pb-")
    proto_root = os.path.join(REPO, "proto")
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"-I{include}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            os.path.join(proto_root, "reprieve", "v1", "reprieve.proto"),
        ]
    )
    if rc != 0:
        sys.exit(f"protoc failed ({rc})")
    sys.path.insert(0, out)
    from reprieve.v1 import reprieve_pb2, reprieve_pb2_grpc  # noqa: E402

    return reprieve_pb2, reprieve_pb2_grpc


pb, pb_grpc = load_stubs()
import grpc  # noqa: E402

STORAGE_NAMES = {
    pb.STORAGE_CLASS_STANDARD: "STANDARD",
    pb.STORAGE_CLASS_INTELLIGENT_TIERING: "INTELLIGENT_TIERING",
    pb.STORAGE_CLASS_STANDARD_IA: "STANDARD_IA",
    pb.STORAGE_CLASS_ONEZONE_IA: "ONEZONE_IA",
    pb.STORAGE_CLASS_GLACIER_IR: "GLACIER_IR",
    pb.STORAGE_CLASS_GLACIER: "GLACIER",
    pb.STORAGE_CLASS_DEEP_ARCHIVE: "DEEP_ARCHIVE",
}
PB_CLASS = [
    pb.VERDICT_CLASS_RETAIN,
    pb.VERDICT_CLASS_REVIEW,
    pb.VERDICT_CLASS_ARCHIVE,
    pb.VERDICT_CLASS_DELETE_CANDIDATE,
]
SCORE_REASON = [
    pb.REASON_CODE_LIKELY_REUSED,
    pb.REASON_CODE_UNCERTAIN,
    pb.REASON_CODE_UNLIKELY_REUSED,
    pb.REASON_CODE_VERY_UNLIKELY_REUSED,
]


class Scorer(pb_grpc.ReuseScorerServicer):
    def __init__(self, model):
        self.model = model

    def _score(self, objects, at):
        rows, retain, capped, reasons = [], [], [], []
        for o in objects:
            h = o.history
            created = o.created_unix if o.HasField("created_unix") else None
            modified = o.modified_unix if o.HasField("modified_unix") else None
            since = h.complete_since_unix if h.HasField("complete_since_unix") else None
            reads = list(h.access_unix)
            x = features_of_history(reads, at, created, modified, since)
            depth, name_len = depth_and_name_len(o.key)
            size = o.size_bytes if o.HasField("size_bytes") else None
            x += [np.log1p(depth), np.log1p(name_len), np.log1p(size or 0), 1.0 if size is not None else 0.0]
            x += storage_flags(STORAGE_NAMES.get(o.storage_class, ""))
            rows.append(x)
            r = []
            if o.legal_hold:
                r.append(pb.REASON_CODE_LEGAL_HOLD)
            if o.HasField("retain_until_unix") and o.retain_until_unix > at:
                r.append(pb.REASON_CODE_RETENTION_ACTIVE)
            if o.live_references > 0:
                r.append(pb.REASON_CODE_LIVE_REFERENCE)
            born = created if created is not None else reads[0] if reads else since
            if born is None or at - born < MIN_AGE_SECS:
                r.append(pb.REASON_CODE_TOO_NEW)
            retain.append(bool(r))
            cap = False
            if since is None or at - since < MIN_HISTORY_SECS:
                r.append(pb.REASON_CODE_INSUFFICIENT_HISTORY)
                cap = True
            if not o.owner.strip():
                r.append(pb.REASON_CODE_UNKNOWN_OWNER)
                cap = True
            capped.append(cap)
            reasons.append(r)
        if not rows:
            return []
        p = self.model.probability(np.asarray(rows, dtype=np.float64))
        cls = self.model.classes(p, np.asarray(retain), np.asarray(capped))
        score_cls = self.model.classes(p, np.zeros(len(p), bool), np.zeros(len(p), bool))
        verdicts = []
        for o, prob, c, sc, r in zip(objects, p, cls, score_cls, reasons):
            verdicts.append(
                pb.Verdict(
                    key=o.key,
                    tenant=o.tenant,
                    verdict_class=PB_CLASS[c],
                    reuse_probability=float(prob),
                    reasons=r + [SCORE_REASON[sc]],
                    model_version=self.model.version,
                    scored_at_unix=at,
                )
            )
        return verdicts

    def Score(self, request, context):
        at = request.at_unix if request.HasField("at_unix") else int(time.time())
        return pb.ScoreResponse(
            verdicts=self._score(request.objects, at), model_version=self.model.version, at_unix=at
        )

    def ScoreStream(self, request_iterator, context):
        at = None
        for chunk in request_iterator:
            if at is None:
                at = chunk.at_unix if chunk.HasField("at_unix") else int(time.time())
            yield pb.ScoreStreamResponse(
                verdicts=self._score(chunk.objects, at), model_version=self.model.version, at_unix=at
            )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=50061)
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.workers),
        options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)],
    )
    pb_grpc.add_ReuseScorerServicer_to_server(Scorer(SubsetModel()), server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"grpcio ReuseScorer on 127.0.0.1:{args.port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
