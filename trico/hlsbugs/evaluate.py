"""Score a detector on a dataset split: detection precision/recall per bug type and line localization.

Positives are the confirmed bug variants; negatives are the bug-free kernels and the equivalent
mutants of the split. Per bug type t, over the single-bug variants of type t:
  recall        share of variants containing t that the detector flags as buggy
  typed_recall  share where it also names type t
  type_precision  of the files where it names t, the share that really contain t
  localization  of the flagged variants containing t, the share with a finding on t's lines
  region_localization  the same, counting a finding anywhere in the innermost loop holding the bug
                (sanitizers report the faulting access, not the loop bound that caused it)
  false_positive_clean  share of the bug-free kernels where it names t
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from trico.errors import TricoError
from trico.hlsbugs.dataset import load_manifest
from trico.hlsbugs.detectors import Context, Detector, Report
from trico.hlsbugs.taxonomy import BUG_TYPES

CHUNK = 12


@dataclass(frozen=True)
class Item:
    """One file to judge with its truth."""

    id: str
    path: Path
    kernel: str
    bugs: tuple[dict, ...]  # empty for negatives
    kind: str  # bug | clean | equivalent


def dataset_items(root: Path, split: str = "test", limit: int | None = None) -> tuple[list[Item], dict]:
    """The files of a split (train, test or all) with their truth."""
    if split not in ("train", "test", "all"):
        raise TricoError(f"unknown split {split!r}; use train, test or all")
    root = Path(root)
    manifest = load_manifest(root)
    in_split = {k for k, s in manifest["splits"].items() if split in ("all", s)}
    items = [Item(f"{k}/kernel", root / k / "kernel.cpp", k, (), "clean") for k in sorted(in_split)]
    for r in manifest["variants"]:
        if r["kernel"] in in_split and r["label"] in ("bug", "equivalent"):
            kind = "bug" if r["label"] == "bug" else "equivalent"
            items.append(
                Item(r["id"], root / r["file"], r["kernel"], tuple(r["bugs"]) if kind == "bug" else (), kind)
            )
    if limit:
        items = items[:limit]
    return items, manifest


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def score(items: list[Item], reports: list[Report]) -> dict:
    """Metrics from the detector's reports on the items (same order)."""
    pos = [(it, r) for it, r in zip(items, reports) if it.kind == "bug"]
    neg = [(it, r) for it, r in zip(items, reports) if it.kind != "bug"]
    tp = sum(r.buggy for _, r in pos)
    fp = sum(r.buggy for _, r in neg)
    clean = [(it, r) for it, r in neg if it.kind == "clean"]
    equiv = [(it, r) for it, r in neg if it.kind == "equivalent"]
    per_type = {}
    singles = [(it, r) for it, r in pos if len(it.bugs) == 1]
    doubles = [(it, r) for it, r in pos if len(it.bugs) > 1]
    for code in BUG_TYPES:
        # Per-type scores use single-bug files: in a double, a flag may come from the other bug.
        with_t = [(it, r) for it, r in singles if it.bugs[0]["type"] == code]
        flagged = [(it, r) for it, r in with_t if r.buggy]
        typed = [(it, r) for it, r in with_t if any(t == code for t, _ in r.findings)]
        named = [(it, r) for it, r in zip(items, reports) if any(t == code for t, _ in r.findings)]
        named_right = [(it, r) for it, r in named if any(b["type"] == code for b in it.bugs)]

        def located(it: Item, r: Report, code: str = code, key: str = "line") -> bool:
            spans = [
                (b["line"], b["line_end"]) if key == "line" else tuple(b["region"])
                for b in it.bugs
                if b["type"] == code
            ]
            return any(ln is not None and lo <= ln <= hi for _, ln in r.findings for lo, hi in spans)

        per_type[code] = {
            "category": BUG_TYPES[code].category,
            "n": len(with_t),
            "recall": _ratio(len(flagged), len(with_t)),
            "typed_recall": _ratio(len(typed), len(with_t)),
            "type_precision": _ratio(len(named_right), len(named)),
            "localization": _ratio(sum(located(it, r) for it, r in flagged), len(flagged)),
            "region_localization": _ratio(
                sum(located(it, r, key="region") for it, r in flagged), len(flagged)
            ),
            "false_positive_clean": _ratio(
                sum(any(t == code for t, _ in r.findings) for _, r in clean), len(clean)
            ),
        }
    return {
        "files": len(items),
        "positives": len(pos),
        "negatives": len(neg),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, len(pos)),
        "false_positive_rate_clean": _ratio(sum(r.buggy for _, r in clean), len(clean)),
        "false_positive_rate_equivalent": _ratio(sum(r.buggy for _, r in equiv), len(equiv)),
        "clean_kernels": len(clean),
        "doubles": {
            "n": len(doubles),
            "recall": _ratio(sum(r.buggy for _, r in doubles), len(doubles)),
            "both_typed": _ratio(
                sum(all(any(t == b["type"] for t, _ in r.findings) for b in it.bugs) for it, r in doubles),
                len(doubles),
            ),
        },
        "per_type": per_type,
    }


def evaluate(
    root: Path,
    detector: Detector,
    split: str = "test",
    limit: int | None = None,
    jobs: int = 2,
    progress: bool = True,
) -> dict:
    """Run a detector over a dataset split and score it."""
    root = Path(root)
    items, _ = dataset_items(root, split, limit)
    if not items:
        raise TricoError(f"split {split!r} of {root} has no files")
    contexts: dict[str, Context] = {}
    for it in items:
        if it.kernel not in contexts:
            kdir = root / it.kernel
            try:
                contexts[it.kernel] = Context(
                    it.kernel, (kdir / "tb.cpp").read_text(), (kdir / "golden.txt").read_text(), root
                )
            except FileNotFoundError as exc:
                raise TricoError(
                    f"dataset kernel {it.kernel!r} is incomplete: {exc.filename} missing"
                ) from None

    # Files of one kernel go to the detector together so it can share work (one compile per chunk).
    chunks: list[list[int]] = []
    for k in contexts:
        idx = [i for i, it in enumerate(items) if it.kernel == k]
        chunks += [idx[i : i + CHUNK] for i in range(0, len(idx), CHUNK)]
    reports: list[Report | None] = [None] * len(items)
    bar = tqdm(total=len(items), desc=f"evaluate {detector.name}", disable=not progress, unit="file")

    def judge(chunk: list[int]) -> None:
        sources = [items[i].path.read_text() for i in chunk]
        for i, rep in zip(chunk, detector.detect_batch(sources, contexts[items[chunk[0]].kernel])):
            reports[i] = rep
        bar.update(len(chunk))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        list(pool.map(judge, chunks))
    bar.close()
    result = score(items, reports)
    result.update({"detector": detector.name, "split": split, "seconds": round(time.perf_counter() - t0, 1)})
    return result


def format_table(result: dict) -> str:
    """A markdown table of per-type scores plus the totals line."""
    head = f"detector {result['detector']} on split {result['split']}: {result['files']} files, precision {result['precision']}, recall {result['recall']}, FP rate on clean kernels {result['false_positive_rate_clean']}"
    rows = [
        "| type | n (single) | recall | typed recall | type precision | localization | loop-level loc. | FP on clean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for code, m in result["per_type"].items():
        if m["n"] or m["type_precision"] is not None:
            rows.append(
                f"| {code} | {m['n']} | {m['recall']} | {m['typed_recall']} | {m['type_precision']} | {m['localization']} | {m['region_localization']} | {m['false_positive_clean']} |"
            )
    d = result["doubles"]
    tail = f"double-bug files: {d['n']}, recall {d['recall']}, both types named {d['both_typed']}"
    return head + "\n" + "\n".join(rows) + "\n" + tail
