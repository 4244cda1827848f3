"""Generate and label the bug dataset, and write it in the Chrysalis layout plus a manifest.

Layout of a dataset directory:
  manifest.json                 config, summary (validity per type) and one record per variant
  tb_util.h                     shared test-bench header
  <kernel>/kernel.cpp           the bug-free source, with tb.cpp and golden.txt beside it
  <kernel>/bugs/<id>.cpp        a confirmed buggy variant, and <id>.json its Chrysalis description
  equivalent/<kernel>/<id>.cpp  variants whose behaviour did not change (kept out of the bug set)
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from trico.errors import TricoError
from trico.hlsbugs.cparse import LOOP_TYPES, build_design, parse_tree, walk
from trico.hlsbugs.csim import CSimResult, run_batch
from trico.hlsbugs.injectors import Mutation, Planted, apply, sites
from trico.hlsbugs.suite import KERNELS_DIR, Kernel, load_suite
from trico.hlsbugs.taxonomy import BUG_TYPES, bug_type

MANIFEST = "manifest.json"


def kernel_split(name: str, test_share: int = 5) -> str:
    """Deterministic split by kernel, so no kernel has variants on both sides: about 1 in 5 is `test`."""
    return "test" if zlib.crc32(name.encode()) % test_share == 0 else "train"


@dataclass
class GenConfig:
    """What to generate."""

    per_type: int = 3  # single-bug variants per (kernel, bug type), at most
    doubles: int = 8  # double-bug variants per kernel, at most
    seed: int = 0
    jobs: int = 2
    types: list[str] | None = None  # bug type codes; None = all 18
    kernels: list[str] | None = None  # kernel names; None = the whole suite
    kernels_dir: Path = KERNELS_DIR


@dataclass
class Variant:
    """One generated file and what is known about it."""

    id: str
    kernel: Kernel
    mutations: list[Mutation]
    source: str = ""
    planted: list[Planted] = field(default_factory=list)
    csim: CSimResult | None = None
    label: str = ""  # bug | equivalent | invalid

    @property
    def functional(self) -> bool:
        """Whether any planted bug should show in C-simulation."""
        return any(BUG_TYPES[m.bug_type].category == "functional" for m in self.mutations)

    @property
    def needs_csim(self) -> bool:
        """Functional bugs are labeled by execution; RAMB rewrites code too, so its equivalence is checked."""
        return self.functional or any(m.bug_type == "RAMB" for m in self.mutations)


def _plant(v: Variant) -> bool:
    try:
        v.source, v.planted = apply(v.kernel.source, v.mutations)
        parse_tree(v.source, v.id)
    except (ValueError, TricoError):
        v.label = "invalid"
        return False
    return True


def _label(v: Variant, single_labels: dict[str, str]) -> None:
    if v.label == "invalid":
        return
    if v.csim is not None and v.csim.status == "compile_error":
        v.label = "invalid"
        return
    parts_ok = (
        all(single_labels.get(_key(v.kernel, m), "bug") == "bug" for m in v.mutations)
        if len(v.mutations) > 1
        else True
    )
    behaviour_ok = not v.functional or (v.csim is not None and v.csim.deviates)
    v.label = "bug" if parts_ok and behaviour_ok else "equivalent"


def _key(kernel: Kernel, m: Mutation) -> str:
    return f"{kernel.name}:{m.site}"


BATCH = 12  # variants per compile: amortizes compiler start-up and the sanitizer link


def _run_csim(variants: list[Variant], cfg: GenConfig, desc: str, progress: bool) -> None:
    todo = [v for v in variants if v.label != "invalid" and v.needs_csim]
    batches: list[list[Variant]] = []
    for k in dict.fromkeys(v.kernel.name for v in todo):
        same = [v for v in todo if v.kernel.name == k]
        batches += [same[i : i + BATCH] for i in range(0, len(same), BATCH)]
    bar = tqdm(total=len(todo), desc=desc, disable=not progress, unit="variant")

    def work(batch: list[Variant]) -> None:
        k = batch[0].kernel
        results = run_batch([v.source for v in batch], k.testbench, k.golden, cfg.kernels_dir)
        for v, r in zip(batch, results):
            v.csim = r
        bar.update(len(batch))

    with ThreadPoolExecutor(max(1, cfg.jobs)) as pool:
        list(pool.map(work, batches))
    bar.close()


def _choose(rng: random.Random, items: list, k: int) -> list:
    if len(items) <= k:
        return list(items)
    picked = sorted(rng.sample(range(len(items)), k))
    return [items[i] for i in picked]


def build_variants(cfg: GenConfig, progress: bool = True) -> tuple[list[Kernel], list[Variant]]:
    """Inject, plant and label every variant (singles first, then doubles made of confirmed singles)."""
    codes = [bug_type(c).code for c in (cfg.types or list(BUG_TYPES))]
    kernels = load_suite(cfg.kernels_dir, cfg.kernels)
    singles: list[Variant] = []
    for k in kernels:
        design = build_design(k.source, k.name)
        for code in codes:
            rng = random.Random(f"{cfg.seed}:{k.name}:{code}")
            for n, m in enumerate(_choose(rng, sites(design, code), cfg.per_type)):
                singles.append(Variant(f"{k.name}_{code}_{n}", k, [m]))
    for v in singles:
        _plant(v)
    _run_csim(singles, cfg, "label single bugs", progress)
    labels: dict[str, str] = {}
    for v in singles:
        _label(v, labels)
        labels[_key(v.kernel, v.mutations[0])] = v.label

    doubles: list[Variant] = []
    for k in kernels:
        rng = random.Random(f"{cfg.seed}:{k.name}:double")
        pool = [v.mutations[0] for v in singles if v.kernel is k and v.label == "bug"]
        pairs = [
            (a, b)
            for i, a in enumerate(pool)
            for b in pool[i + 1 :]
            if a.bug_type != b.bug_type and not a.overlaps(b)
        ]
        for n, (a, b) in enumerate(_choose(rng, pairs, cfg.doubles)):
            doubles.append(Variant(f"{k.name}_{a.bug_type}+{b.bug_type}_{n}", k, [a, b]))
    for v in doubles:
        _plant(v)
    _run_csim(doubles, cfg, "label double bugs", progress)
    for v in doubles:
        _label(v, labels)
    return kernels, singles + doubles


def _chrysalis(v: Variant) -> dict:
    return {
        "Error Size": len(v.planted),
        "Error Specification": [
            {
                "Error Type": p.mutation.bug_type,
                "Original Code": p.original_code,
                "Faulty Code": p.faulty_code,
            }
            for p in v.planted
        ],
    }


def bug_region(root, line: int, line_end: int) -> tuple[int, int]:
    """Lines of the innermost loop (else function) holding a bug: where a symptom-level report still points."""
    best = None
    for node in walk(root):
        if node.type in (*LOOP_TYPES, "function_definition"):
            lo, hi = node.start_point[0] + 1, node.end_point[0] + 1
            if lo <= line and line_end <= hi and (best is None or hi - lo < best[1] - best[0]):
                best = (lo, hi)
    return best or (line, line_end)


def _record(v: Variant, path: str) -> dict:
    root = parse_tree(v.source, v.id).root_node if v.planted else None
    return {
        "id": v.id,
        "kernel": v.kernel.name,
        "split": kernel_split(v.kernel.name),
        "file": path,
        "label": v.label,
        "bug_types": [m.bug_type for m in v.mutations],
        "bugs": [
            {
                "type": p.mutation.bug_type,
                "line": p.line,
                "line_end": p.line_end,
                "region": list(bug_region(root, p.line, p.line_end)),
                "original_code": p.original_code,
                "faulty_code": p.faulty_code,
                "rule": p.mutation.rule,
                "label_source": "execution"
                if BUG_TYPES[p.mutation.bug_type].category == "functional"
                else "rule",
            }
            for p in v.planted
        ],
        "csim": v.csim.to_json() if v.csim is not None else None,
    }


def summarize(records: list[dict]) -> dict:
    """Validity per bug type (single-bug variants) and totals."""
    per_type = {}
    for code, bt in BUG_TYPES.items():
        rows = [r for r in records if r["bug_types"] == [code]]
        n_bug = sum(r["label"] == "bug" for r in rows)
        n_eq = sum(r["label"] == "equivalent" for r in rows)
        n_inv = sum(r["label"] == "invalid" for r in rows)
        judged = n_bug + n_eq
        per_type[code] = {
            "category": bt.category,
            "variants": len(rows),
            "bug": n_bug,
            "equivalent": n_eq,
            "invalid": n_inv,
            "validity": round(n_bug / judged, 4) if judged else None,
        }
    functional = [
        r
        for r in records
        if len(r["bug_types"]) == 1 and BUG_TYPES[r["bug_types"][0]].category == "functional"
    ]
    judged_f = [r for r in functional if r["label"] != "invalid"]
    return {
        "variants": len(records),
        "labeled": sum(r["label"] in ("bug", "equivalent") for r in records),
        "bug": sum(r["label"] == "bug" for r in records),
        "equivalent": sum(r["label"] == "equivalent" for r in records),
        "invalid": sum(r["label"] == "invalid" for r in records),
        "single": sum(len(r["bug_types"]) == 1 for r in records),
        "double": sum(len(r["bug_types"]) == 2 for r in records),
        "functional_validity": round(sum(r["label"] == "bug" for r in judged_f) / len(judged_f), 4)
        if judged_f
        else None,
        "per_type": per_type,
    }


def generate(out: Path, cfg: GenConfig | None = None, progress: bool = True, force: bool = False) -> dict:
    """Build the labeled dataset into `out` (written to a temporary directory, then renamed)."""
    cfg = cfg or GenConfig()
    out = Path(out)
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise TricoError(f"{out} exists and is not empty (use --force to replace it)")
    t0 = time.perf_counter()
    kernels, variants = build_variants(cfg, progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        shutil.copy(cfg.kernels_dir / "tb_util.h", tmp / "tb_util.h")
        for k in kernels:
            (tmp / k.name / "bugs").mkdir(parents=True)
            for f in ("kernel.cpp", "tb.cpp", "golden.txt"):
                shutil.copy(k.dir / f, tmp / k.name / f)
        records = []
        for v in variants:
            if v.label == "bug":
                rel = f"{v.kernel.name}/bugs/{v.id}.cpp"
                (tmp / rel).with_suffix(".json").write_text(json.dumps(_chrysalis(v), indent=2) + "\n")
            elif v.label == "equivalent":
                rel = f"equivalent/{v.kernel.name}/{v.id}.cpp"
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            else:
                rel = ""
            if rel:
                (tmp / rel).write_text(v.source)
            records.append(_record(v, rel))
        summary = summarize(records)
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        manifest = {
            "format": "trico-hlsbugs/1",
            "config": {
                "per_type": cfg.per_type,
                "doubles": cfg.doubles,
                "seed": cfg.seed,
                "types": cfg.types,
                "kernels": [k.name for k in kernels],
            },
            "splits": {k.name: kernel_split(k.name) for k in kernels},
            "summary": summary,
            "variants": records,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if out.is_dir():
            shutil.rmtree(out)
        elif out.exists():
            out.unlink()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def load_manifest(root: Path) -> dict:
    """Read a dataset's manifest; a missing or unreadable one is a TricoError."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise TricoError(
            f"{root} is not a trico hlsbugs dataset (no {MANIFEST}); run `trico hlsbugs generate` first"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TricoError(f"{path}: corrupt manifest ({exc})") from None
