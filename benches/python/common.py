"""What the Python peers share: the feature subset, the logistic model restricted to it, and the policy.

The peers compute a documented SUBSET of Reprieve's 79 features (schema `reprieve-features-v1`,
crates/reprieve-core/src/features.rs), with the same definitions as ours. DAY = 86400 s; `at` is the scoring time;
only reads with ts < at count; "age" of a read = at - ts.

  age_days_log              ln1p(max(0, at - birth) / DAY); birth = created, else the first read, else the start
                            of coverage; a birth after `at` counts as unknown (0)
  age_known                 1 if created is known and <= at
  modified_days_log         ln1p(days since modified), modified > at or unknown: the age
  since_last_read_days_log  ln1p(days since the last read); never read: days since the start of coverage, else
                            since birth, else 0
  never_read                1 if no read before at
  coverage_days_log         ln1p(days since the start of coverage) (batch: the earliest read before `at` in all the
                            logs, as `reprieve score` does without --history-complete-since)
  reads_{1,7,30,90,365}d_log  ln1p(reads with age <= N days)
  reads_total_log           ln1p(reads before at)
  gap_count_frac            (gaps among the 16 most recent reads) / 15
  gap_mean_days_log         ln1p(mean of those gaps / DAY)
  gap_last_days_log         ln1p(most recent gap / DAY)
  gap_max_days_log          ln1p(largest of those gaps / DAY)
  gap_cv                    population std / mean of those gaps, capped at 10 (0 if the mean is 0 or no gaps)
  depth_log                 ln1p(number of '/' in the key, after dropping '@sha256:...' and trailing '/')
  name_len_log              ln1p(bytes in the last path segment)
  size_log, size_known      ln1p(size in bytes, 0 if unknown), 1 if known
  storage_infrequent        STANDARD_IA, ONEZONE_IA, GLACIER_IR
  storage_archive           GLACIER, GLACIER_FLEXIBLE_RETRIEVAL, DEEP_ARCHIVE
  storage_unknown           empty or unrecognised storage class

That is 24 of the 79 features. Not computed here (ours computes them, so every ratio is conservative): active days
/ weeks bitmaps, the four decayed counters, overdue ratio, period regularity, weekly / monthly / yearly lag
matches and "upcoming" flags, the media-type one-hot, the name token flags (temp, backup, old, thumb, size
suffix, date, year age, hash-like, semver, latest, seasonal), and the 16 prefix-activity features (parent and
top-level prefix aggregates over the whole inventory). The peers also skip the model's domain check, reason
lists, verdict ids and top contributions, which our scores file carries.

Model: the logistic coefficients are LOADED from models/default.json, restricted to the subset (the other 55
features sit at their training mean, i.e. contribute 0), with the standardisation folded into the weights and
the Platt calibration folded into coef/intercept. They are set on a scikit-learn LogisticRegression, whose
predict_proba does the scoring. The probabilities are therefore not ours (the subset drops features); the work
per object is what is being compared.
"""

import argparse
import json
import math
import os

import numpy as np
from sklearn.linear_model import LogisticRegression

DAY = 86_400
WINDOWS_DAYS = (1, 7, 30, 90, 365)
RECENT = 16

SUBSET = [
    "age_days_log",
    "age_known",
    "modified_days_log",
    "since_last_read_days_log",
    "never_read",
    "coverage_days_log",
    "reads_1d_log",
    "reads_7d_log",
    "reads_30d_log",
    "reads_90d_log",
    "reads_365d_log",
    "reads_total_log",
    "gap_count_frac",
    "gap_mean_days_log",
    "gap_last_days_log",
    "gap_max_days_log",
    "gap_cv",
    "depth_log",
    "name_len_log",
    "size_log",
    "size_known",
    "storage_infrequent",
    "storage_archive",
    "storage_unknown",
]

INFREQUENT = {"STANDARD_IA", "ONEZONE_IA", "GLACIER_IR"}
ARCHIVE = {"GLACIER", "GLACIER_FLEXIBLE_RETRIEVAL", "DEEP_ARCHIVE"}
KNOWN_HOT = {"STANDARD", "REDUCED_REDUNDANCY", "EXPRESS_ONEZONE", "INTELLIGENT_TIERING"}

# Policy (crates/reprieve-core/src/policy.rs, defaults of PolicyConfig).
MIN_AGE_SECS = 30 * DAY
MIN_HISTORY_SECS = 30 * DAY
RETAIN, REVIEW, ARCHIVE_CLASS, DELETE = 0, 1, 2, 3
CLASS_NAMES = np.array(["RETAIN", "REVIEW", "ARCHIVE", "DELETE_CANDIDATE"])

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_MODEL = os.path.join(REPO, "models", "default.json")


class SubsetModel:
    """models/default.json restricted to SUBSET, as a scikit-learn LogisticRegression plus thresholds."""

    def __init__(self, path=DEFAULT_MODEL):
        with open(path) as f:
            artifact = json.load(f)
        names = artifact["feature_schema"]["names"]
        scorer = artifact["scorer"]
        a, b = artifact["calibration"]["a"], artifact["calibration"]["b"]
        idx = [names.index(n) for n in SUBSET]
        w = np.array([scorer["weights"][i] / scorer["scale"][i] for i in idx])
        mean = np.array([scorer["mean"][i] for i in idx])
        intercept = scorer["intercept"] - float(np.dot(w, mean))
        clf = LogisticRegression()
        clf.classes_ = np.array([0, 1])
        clf.coef_ = (a * w).reshape(1, -1)
        clf.intercept_ = np.array([a * intercept + b])
        clf.n_features_in_ = len(SUBSET)
        self.clf = clf
        t = artifact["thresholds"]
        self.delete_max, self.archive_max, self.retain_min = t["delete_max"], t["archive_max"], t["retain_min"]
        self.version = artifact["version"]

    def probability(self, x):
        return self.clf.predict_proba(x)[:, 1]

    def classes(self, p, retain_outright, capped_review):
        """Score class from p, then the hard rules: RETAIN outright, else at most REVIEW when capped."""
        score_class = np.select(
            [p <= self.delete_max, p <= self.archive_max, p < self.retain_min],
            [DELETE, ARCHIVE_CLASS, REVIEW],
            default=RETAIN,
        )
        capped = np.where(capped_review, np.minimum(score_class, REVIEW), score_class)
        return np.where(retain_outright, RETAIN, capped)


def batch_args():
    """The command line both batch peers take."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--inventory", required=True)
    ap.add_argument("--events", required=True)
    ap.add_argument("--at", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--features-out", help="also write tenant, key and the feature subset (for check_features.py)")
    return ap.parse_args()


def storage_flags(name):
    """(infrequent, archive, unknown) for one storage class name."""
    n = (name or "").strip().upper()
    if n in INFREQUENT:
        return 1.0, 0.0, 0.0
    if n in ARCHIVE:
        return 0.0, 1.0, 0.0
    if n in KNOWN_HOT:
        return 0.0, 0.0, 0.0
    return 0.0, 0.0, 1.0


def depth_and_name_len(key):
    path = key.split("@sha256:", 1)[0]
    trimmed = path.rstrip("/")
    name = trimmed.rsplit("/", 1)[-1]
    return trimmed.count("/"), len(name.encode())


def features_of_history(reads, at, created, modified, complete_since):
    """The history part of the subset for one object from its raw read times (the gRPC peer's path)."""
    reads = [t for t in reads if t < at]
    n = len(reads)
    first = min(reads) if n else None
    last = max(reads) if n else None
    coverage = complete_since if complete_since is not None and complete_since <= at else None
    birth = created if created is not None else first if first is not None else coverage
    if birth is not None and birth > at:
        birth = None
    age = at - birth if birth is not None else 0
    mod = at - modified if modified is not None and modified <= at else age
    if last is not None:
        silence = at - last
    else:
        start = coverage if coverage is not None else birth
        silence = at - start if start is not None else 0
    out = [
        math.log1p(max(age, 0) / DAY),
        1.0 if created is not None and created <= at else 0.0,
        math.log1p(max(mod, 0) / DAY),
        math.log1p(max(silence, 0) / DAY),
        1.0 if n == 0 else 0.0,
        math.log1p(max(at - coverage, 0) / DAY) if coverage is not None else 0.0,
    ]
    ages = np.sort(at - np.asarray(reads, dtype=np.int64)) if n else np.empty(0, dtype=np.int64)
    for d in WINDOWS_DAYS:
        out.append(math.log1p(int(np.count_nonzero(ages <= d * DAY))))
    out.append(math.log1p(n))
    recent = ages[:RECENT]
    gaps = np.diff(recent).astype(np.float64)
    if len(gaps):
        m = gaps.mean()
        cv = min(gaps.std() / m, 10.0) if m > 0 else 0.0
        out += [len(gaps) / (RECENT - 1), math.log1p(m / DAY), math.log1p(gaps[0] / DAY),
                math.log1p(gaps.max() / DAY), cv]
    else:
        out += [0.0, 0.0, 0.0, 0.0, 0.0]
    return out
