"""The Numenta Anomaly Benchmark (NAB v1.1) score of a detector's results, re-implemented from NAB's
rules (nab/sweeper.py, nab/runner.py, nab/labeler.py, nab/util.py) in numpy.

NAB's rules, as this module applies them:
- The first min(floor(0.15 * N), 0.15 * 5000) rows of each file are its probationary period: never scored.
- Each anomaly window is an inclusive row range [a, b] of width W = b - a + 1. A detection at row i
  inside it weighs tpWeight * sigma(-(b - i + 1) / W) / sigma(-1): the window's first row weighs exactly
  tpWeight, later rows less (the last row sigma(-1/W) / sigma(-1)). Only the best (earliest) detection of
  a window counts; a window without one costs -fnWeight.
- A detection outside every window costs fpWeight * sigma((i - b) / (W - 1)), with b and W those of
  the closest preceding window, and -fpWeight where that position is past 3.0 or no window precedes
  the row (files without windows: every detection costs -fpWeight).
- sigma(y) = 2 / (1 + exp(5 y)) - 1.
- One threshold per profile for the whole corpus: the anomaly score, among all the scorable rows'
  distinct scores and 1.1 (nothing detected), that gives the highest corpus score; ties go to the
  higher threshold, as NAB's sweep lists thresholds in descending order and keeps the first best.
  A row is a detection when its anomaly score is >= the threshold.
- Normalised score = 100 * (raw - null) / (perfect - null): null is the detector that detects
  nothing (-fnWeight per window), perfect detects every window at its first row (tpWeight per window).

The sweep is NAB's in vector form: all scorable rows of the corpus in descending score order, each
row's change of the corpus score when it becomes a detection, and a cumulative sum read at the last
row of each distinct score.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
TimeArray = npt.NDArray[np.datetime64]

PROBATION_PERCENT = 0.15
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
# NAB's sweep starts above every possible score: the threshold at which nothing is detected.
NO_DETECTION = 1.1
# Beyond this relative distance past a window NAB stops the sigmoid and charges the full FP cost.
FAR_PAST_WINDOW = 3.0
NAB_DIR_ENV = "PGANALYTICS_NAB_DIR"
WINDOWS_FILE = "labels/combined_windows.json"
PROFILES_FILE = "config/profiles.json"


def default_nab_dir() -> Path:
    """$PGANALYTICS_NAB_DIR, else shared/datasets/nab next to the checkout (the repo root's parent)."""
    override = os.environ.get(NAB_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "nab"


@dataclass(frozen=True)
class CostMatrix:
    tp_weight: float
    fp_weight: float
    fn_weight: float


def load_profiles(path: Path) -> dict[str, CostMatrix]:
    """NAB's config/profiles.json: {profile: {"CostMatrix": {"tpWeight": ..., ...}}}."""
    with open(path) as f:
        raw = json.load(f)
    try:
        return {name: CostMatrix(float(p["CostMatrix"]["tpWeight"]), float(p["CostMatrix"]["fpWeight"]),
                                 float(p["CostMatrix"]["fnWeight"]))
                for name, p in raw.items()}
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a NAB profiles file ({e!r})") from e


def probation_length(n_rows: int, percent: float = PROBATION_PERCENT) -> int:
    """NAB's getProbationPeriod, computed in the same float arithmetic so the cut lands on the same row."""
    return int(min(math.floor(percent * n_rows), percent * 5000))


def scaled_sigmoid(position: FloatArray) -> FloatArray:
    """sigma(y) = 2 / (1 + e^(5y)) - 1: +0.987 at a window's left edge (-1), 0 at its right edge."""
    return np.asarray(2.0 / (1.0 + np.exp(5.0 * position)) - 1.0, dtype=np.float64)


# NAB divides TP weights by it, so that a detection at a window's first row weighs exactly tpWeight.
MAX_TP = float(scaled_sigmoid(np.array(-1.0)))


@dataclass(frozen=True)
class DataFile:
    """One corpus file: its rows' timestamps and its anomaly windows as inclusive row ranges."""

    name: str  # "<category>/<file>.csv", the key of NAB's label files
    timestamps: TimeArray
    windows: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        _check_windows(self.name, len(self.timestamps), self.windows)

    @property
    def n_rows(self) -> int:
        return len(self.timestamps)


def _check_windows(name: str, n_rows: int, windows: Sequence[tuple[int, int]]) -> None:
    """Refuse windows NAB's labeller never produces and its sweep would mis-score (or divide by zero)."""
    probation = probation_length(n_rows)
    previous_end = -1
    for start, end in windows:
        if not 0 <= start < end < n_rows:
            raise ValueError(f"{name}: window rows [{start}, {end}] are not 2 or more rows "
                             f"within 0..{n_rows - 1}")
        if start <= previous_end:
            raise ValueError(f"{name}: windows overlap or are out of order at rows [{start}, {end}]")
        if start < probation:
            # NAB's labeller drops such windows (checkWindows); left in, the perfect detector could not
            # reach 100.
            raise ValueError(f"{name}: window [{start}, {end}] starts inside the probationary period "
                             f"(first {probation} rows)")
        previous_end = end


@dataclass(frozen=True)
class Corpus:
    files: Mapping[str, DataFile]

    @property
    def n_windows(self) -> int:
        return sum(len(f.windows) for f in self.files.values())


def _read_columns(path: Path, wanted: Sequence[str]) -> dict[str, list[str]]:
    """The named columns of a CSV file with a header row (other columns are allowed and skipped)."""
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{path}: empty file")
            header = [h.strip() for h in header]
            missing = [c for c in wanted if c not in header]
            if missing:
                raise ValueError(f"{path}: no column {', '.join(missing)} (columns: {', '.join(header)})")
            where = [header.index(c) for c in wanted]
            columns: dict[str, list[str]] = {c: [] for c in wanted}
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue  # a blank line, e.g. a doubled newline at the end
                if len(row) != len(header):
                    raise ValueError(f"{path}: line {line} has {len(row)} fields, the header {len(header)}")
                for c, i in zip(wanted, where):
                    columns[c].append(row[i])
    except FileNotFoundError as e:
        raise ValueError(f"{path}: file not found") from e
    return columns


def _parse_timestamps(path: Path, values: list[str]) -> TimeArray:
    try:
        return np.array(values, dtype="datetime64[us]")
    except ValueError as e:
        raise ValueError(f"{path}: unreadable timestamp ({e})") from e


def read_data_timestamps(path: Path) -> TimeArray:
    """A NAB data file's timestamps (its values are not needed for scoring)."""
    return _parse_timestamps(path, _read_columns(path, ["timestamp"])["timestamp"])


def _window_rows(name: str, timestamps: TimeArray,
                 limits: Sequence[Sequence[str]]) -> tuple[tuple[int, int], ...]:
    """Window limits (timestamps) as row indices. Like NAB's labeller, each limit must be the timestamp of
    exactly one row: some data files repeat or step back a timestamp (daylight-saving changes), not there."""
    rows = []
    for limit in limits:
        if len(limit) != 2:
            raise ValueError(f"{name}: window {limit!r} is not [start, end]")
        try:
            times = np.array(limit, dtype="datetime64[us]")
        except ValueError as e:
            raise ValueError(f"{name}: unreadable window limit in {limit!r} ({e})") from e
        pair = []
        for t in times:
            found = np.flatnonzero(timestamps == t)
            if len(found) != 1:
                raise ValueError(f"{name}: window limit {t} is the timestamp of {len(found)} rows of the "
                                 "data file, not of one")
            pair.append(int(found[0]))
        rows.append((pair[0], pair[1]))
    return tuple(rows)


def load_corpus(nab_dir: Path | None = None, windows_file: str = WINDOWS_FILE) -> Corpus:
    """The files named in NAB's windows file, with their timestamps from data/<category>/<file>.csv."""
    nab_dir = default_nab_dir() if nab_dir is None else nab_dir
    labels_path = nab_dir / windows_file
    try:
        with open(labels_path) as f:
            all_limits: dict[str, list[list[str]]] = json.load(f)
    except FileNotFoundError as e:
        raise ValueError(f"{labels_path}: file not found") from e
    files = {}
    for name in sorted(all_limits):
        timestamps = read_data_timestamps(nab_dir / "data" / name)
        files[name] = DataFile(name, timestamps, _window_rows(name, timestamps, all_limits[name]))
    return Corpus(files)


def results_path(results_dir: Path, detector: str, name: str) -> Path:
    """NAB's results layout: <results_dir>/<category>/<detector>_<file>.csv."""
    relative = Path(name)
    return results_dir / relative.parent / f"{detector}_{relative.name}"


def _check_scores(path: Path, data: DataFile, timestamps: TimeArray, scores: FloatArray) -> None:
    if len(scores) != data.n_rows:
        raise ValueError(f"{path}: {len(scores)} rows, the data file {data.name} has {data.n_rows}")
    differ = np.flatnonzero(timestamps != data.timestamps)
    if len(differ):
        i = int(differ[0])
        raise ValueError(f"{path}: row {i + 1} has timestamp {timestamps[i]}, "
                         f"the data file {data.timestamps[i]}")
    bad = np.flatnonzero(~np.isfinite(scores))
    if len(bad):
        raise ValueError(f"{path}: anomaly_score {scores[bad[0]]} (not a number) at row {bad[0] + 1}")
    outside = np.flatnonzero((scores < 0.0) | (scores > 1.0))
    if len(outside):
        raise ValueError(f"{path}: anomaly_score {scores[outside[0]]} outside [0, 1] at row {outside[0] + 1}")


def load_results(results_dir: Path, detector: str, corpus: Corpus) -> dict[str, FloatArray]:
    """Each corpus file's anomaly scores from a detector's NAB results files (columns timestamp and
    anomaly_score; value, label, S(t)_<profile> and others are ignored), checked against the data file."""
    scores = {}
    for name, data in corpus.files.items():
        path = results_path(results_dir, detector, name)
        if not path.is_file():
            raise ValueError(f"{path}: results file missing (for data file {name})")
        columns = _read_columns(path, ["timestamp", "anomaly_score"])
        try:
            values = np.array(columns["anomaly_score"], dtype=np.float64)
        except ValueError as e:
            raise ValueError(f"{path}: unreadable anomaly_score ({e})") from e
        _check_scores(path, data, _parse_timestamps(path, columns["timestamp"]), values)
        scores[name] = values
    return scores


def row_weights(data: DataFile) -> tuple[IntArray, FloatArray]:
    """Per row: the index of the window holding it (-1: none) and its unweighted NAB weight, a TP weight
    in (0, 1] inside a window (times tpWeight when detected), an FP weight in [-1, 0) outside (times
    fpWeight)."""
    rows = np.arange(data.n_rows)
    window = np.full(data.n_rows, -1, dtype=np.int64)
    weight = np.full(data.n_rows, -1.0)  # before any window: the full FP cost
    if not data.windows:
        return window, weight
    starts = np.array([s for s, _ in data.windows])
    ends = np.array([e for _, e in data.windows])
    widths = (ends - starts + 1).astype(np.float64)
    # The last window starting at or before each row: the row's own window or, past its end, the
    # closest preceding one (windows do not overlap).
    last = np.searchsorted(starts, rows, side="right") - 1
    known = last >= 0
    j = np.where(known, last, 0)
    inside = known & (rows <= ends[j])
    past = known & ~inside
    position = -(ends[j] - rows + 1) / widths[j]
    weight[inside] = scaled_sigmoid(position[inside]) / MAX_TP
    distance = (rows - ends[j]) / (widths[j] - 1.0)
    weight[past] = np.where(distance[past] > FAR_PAST_WINDOW, -1.0, scaled_sigmoid(distance[past]))
    window[inside] = j[inside]
    return window, weight


@dataclass(frozen=True)
class Sweep:
    """The scorable rows (after probation) of the whole corpus in descending anomaly-score order, with
    what each one changes when the threshold comes down to its score. Independent of the profile."""

    scores: FloatArray
    in_window: BoolArray
    fp_cost: FloatArray  # unweighted FP weight (<= 0) of a row outside the windows (0 inside)
    first: BoolArray  # the first of its window's rows reached: the window turns from missed to detected
    tp_gain: FloatArray  # rise of its window's best unweighted TP weight at this row (0 outside)
    n_windows: int

    def detections(self, threshold: float) -> int:
        """How many rows (a prefix of the order) score >= threshold."""
        return int(np.searchsorted(-self.scores, -threshold, side="right"))


def build_sweep(corpus: Corpus, anomaly_scores: Mapping[str, FloatArray]) -> Sweep:
    """Pool the corpus's scorable rows, as NAB pools every file's rows before its one sweep."""
    scores, windows, weights = [], [], []
    offset = 0  # window indices are per file: make them unique in the corpus
    for name, data in corpus.files.items():
        window, weight = row_weights(data)
        keep = slice(probation_length(data.n_rows), None)
        scores.append(np.asarray(anomaly_scores[name], dtype=np.float64)[keep])
        windows.append(np.where(window[keep] >= 0, window[keep] + offset, -1))
        weights.append(weight[keep])
        offset += len(data.windows)
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    order = np.argsort(-all_scores, kind="stable")
    window = np.concatenate(windows)[order] if windows else np.zeros(0, dtype=np.int64)
    weight = np.concatenate(weights)[order] if weights else np.zeros(0)
    in_window = window >= 0
    first, tp_gain = _window_gains(window, np.where(in_window, weight, 0.0))
    return Sweep(all_scores[order], in_window, np.where(in_window, 0.0, weight), first, tp_gain, offset)


def _window_gains(window: IntArray, weight: FloatArray) -> tuple[BoolArray, FloatArray]:
    """For rows in descending score order: whether a row is its window's first, and how much it raises
    the window's best weight so far (NAB keeps the max, i.e. the earliest detection's weight). Summed
    over the rows down to a threshold, the gains give each window's best detected weight."""
    first = np.zeros(len(window), dtype=np.bool_)
    gain = np.zeros(len(window))
    rows = np.flatnonzero(window >= 0)
    rows = rows[np.argsort(window[rows], kind="stable")]  # grouped by window, score order kept within
    if len(rows) == 0:
        return first, gain
    starts = np.flatnonzero(np.r_[True, window[rows][1:] != window[rows][:-1]])
    for group in np.split(rows, starts[1:]):  # one short numpy pass per window (116 in NAB)
        best = np.maximum.accumulate(weight[group])
        gain[group] = np.diff(best, prepend=0.0)
        first[group[0]] = True
    return first, gain


@dataclass(frozen=True)
class ProfileScore:
    profile: str
    threshold: float
    raw: float
    normalised: float
    null: float  # raw score of the detector that detects nothing
    perfect: float  # raw score of the detector that detects every window at its first row
    tp: int  # windows detected
    fn: int  # windows missed
    fp: int  # detections outside every window
    tp_rows: int  # detections inside windows (NAB's "TP" count)
    fn_rows: int  # window rows below the threshold (NAB's "FN" count)

    def as_dict(self) -> dict[str, float | int | str]:
        return dataclasses.asdict(self)


def _score_curve(sweep: Sweep, cost: CostMatrix) -> FloatArray:
    """Raw corpus score after the first k detections, for k = 0..n."""
    change = np.where(sweep.in_window, cost.tp_weight * sweep.tp_gain + cost.fn_weight * sweep.first,
                      cost.fp_weight * sweep.fp_cost)
    return np.concatenate([[0.0], np.cumsum(change)]) - cost.fn_weight * sweep.n_windows


def _best_cut(sweep: Sweep, curve: FloatArray) -> tuple[float, int]:
    """NAB's threshold: the best of 1.1 and every distinct score, each cut after its last row."""
    last_of_score = np.flatnonzero(np.r_[sweep.scores[1:] != sweep.scores[:-1], True])[:len(sweep.scores)]
    cuts = np.concatenate([[0], last_of_score + 1])
    thresholds = np.concatenate([[NO_DETECTION], sweep.scores[last_of_score]])
    best = int(np.argmax(curve[cuts]))  # the first maximum: the highest threshold among equal scores
    return float(thresholds[best]), int(cuts[best])


def score_profile(sweep: Sweep, profile: str, cost: CostMatrix,
                  threshold: float | None = None) -> ProfileScore:
    """The profile's score at the given threshold, or at NAB's optimised one when threshold is None."""
    curve = _score_curve(sweep, cost)
    if threshold is None:
        threshold, k = _best_cut(sweep, curve)
    else:
        k = sweep.detections(threshold)
    null = -cost.fn_weight * sweep.n_windows
    perfect = cost.tp_weight * sweep.n_windows
    raw = float(curve[k])
    tp = int(np.count_nonzero(sweep.first[:k]))
    tp_rows = int(np.count_nonzero(sweep.in_window[:k]))
    normalised = 100.0 * (raw - null) / (perfect - null) if perfect != null else math.nan
    return ProfileScore(profile=profile, threshold=threshold, raw=raw, normalised=normalised, null=null,
                        perfect=perfect, tp=tp, fn=sweep.n_windows - tp, fp=k - tp_rows, tp_rows=tp_rows,
                        fn_rows=int(np.count_nonzero(sweep.in_window)) - tp_rows)


def score_detector(corpus: Corpus, anomaly_scores: Mapping[str, FloatArray], costs: Mapping[str, CostMatrix],
                   thresholds: Mapping[str, float] | None = None) -> dict[str, ProfileScore]:
    """Score in-memory anomaly scores (one array per corpus file, already checked) for each profile of
    costs, at thresholds[profile] where given, else at the optimised threshold."""
    missing = [name for name in corpus.files if name not in anomaly_scores]
    if missing:
        raise ValueError(f"no anomaly scores for {', '.join(missing)}")
    sweep = build_sweep(corpus, anomaly_scores)
    return {name: score_profile(sweep, name, cost, None if thresholds is None else thresholds.get(name))
            for name, cost in costs.items()}


def score_corpus(results_dir: Path | str, detector_name: str, profiles: Sequence[str] = PROFILES,
                 nab_dir: Path | None = None, corpus: Corpus | None = None) -> dict[str, ProfileScore]:
    """NAB's optimise + score + normalise for a detector's results directory
    (<results_dir>/<category>/<detector_name>_<file>.csv), per profile of NAB's config/profiles.json."""
    nab_dir = default_nab_dir() if nab_dir is None else nab_dir
    corpus = load_corpus(nab_dir) if corpus is None else corpus
    known = load_profiles(nab_dir / PROFILES_FILE)
    unknown = [p for p in profiles if p not in known]
    if unknown:
        raise ValueError(f"unknown profile {', '.join(unknown)} (known: {', '.join(known)})")
    scores = load_results(Path(results_dir), detector_name, corpus)
    return score_detector(corpus, scores, {p: known[p] for p in profiles})
