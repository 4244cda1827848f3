"""CLI: `trico hlsbugs generate|evaluate` and `trico hls lint FILE`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from trico.errors import TricoError


def _group(subparsers, name: str, help_text: str):
    """The sub-command action of a command group, created if no other module made it yet.

    `hls` is shared with the HLS compiler's commands, so whichever module registers second joins it.
    """
    parser = subparsers.choices.get(name)
    if parser is None:
        parser = subparsers.add_parser(name, help=help_text)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")


def register(subparsers) -> None:
    """Add the hlsbugs group and `hls lint`."""
    bugs = _group(subparsers, "hlsbugs", "HLS bug injection, labeled dataset and detector evaluation")

    gen = bugs.add_parser("generate", help="inject bugs into the kernel suite and label every variant")
    gen.add_argument("--out", required=True, type=Path, help="dataset directory to create")
    gen.add_argument(
        "--per-type", type=int, default=3, help="single-bug variants per kernel and bug type (default 3)"
    )
    gen.add_argument("--doubles", type=int, default=8, help="double-bug variants per kernel (default 8)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="parallel C-simulations")
    gen.add_argument("--types", help="comma-separated bug types (default: all 18)")
    gen.add_argument("--kernels", help="comma-separated kernel names (default: the whole suite)")
    gen.add_argument("--kernels-dir", type=Path, help="another kernel suite directory")
    gen.add_argument("--force", action="store_true", help="replace an existing dataset directory")
    gen.add_argument("--no-progress", action="store_true")
    gen.set_defaults(func=_generate)

    ev = bugs.add_parser("evaluate", help="score a detector per bug type on a dataset split")
    ev.add_argument("--dataset", required=True, type=Path)
    ev.add_argument("--detector", required=True, help="lint, sanitizer or llm")
    ev.add_argument("--split", default="test", help="train, test or all (default test)")
    ev.add_argument("--limit", type=int, help="judge only the first N files")
    ev.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ev.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (llm)")
    ev.add_argument("--model", help="model name sent to the endpoint (llm)")
    ev.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key"
    )
    ev.add_argument("--timeout", type=float, default=120.0, help="seconds per LLM request")
    ev.add_argument("--json", type=Path, help="also write the full result here")
    ev.add_argument("--no-progress", action="store_true")
    ev.set_defaults(func=_evaluate)

    hls = _group(subparsers, "hls", "HLS compiler and tools")
    lint = hls.add_parser("lint", help="check the HLS pragmas of a C++ file against each pragma type's rules")
    lint.add_argument("file", type=Path)
    lint.add_argument(
        "--top", help="top function (default: the file's directory name, else the last function)"
    )
    lint.add_argument("--json", action="store_true", help="print findings as JSON")
    lint.set_defaults(func=_lint)


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _generate(args) -> int:
    from trico.hlsbugs.dataset import GenConfig, generate
    from trico.hlsbugs.suite import KERNELS_DIR

    if args.per_type < 1 or args.doubles < 0 or args.jobs < 1:
        raise TricoError("--per-type and --jobs must be >= 1 and --doubles >= 0")
    cfg = GenConfig(
        per_type=args.per_type,
        doubles=args.doubles,
        seed=args.seed,
        jobs=args.jobs,
        types=_csv(args.types),
        kernels=_csv(args.kernels),
        kernels_dir=args.kernels_dir or KERNELS_DIR,
    )
    summary = generate(args.out, cfg, progress=not args.no_progress, force=args.force)
    print(
        f"{summary['variants']} variants ({summary['single']} single, {summary['double']} double) in {summary['seconds']} s: "
        f"{summary['bug']} bugs, {summary['equivalent']} equivalent mutants, {summary['invalid']} invalid"
    )
    print(f"functional validity {summary['functional_validity']}")
    print("| type | variants | bug | equivalent | invalid | validity |\n|---|---|---|---|---|---|")
    for code, row in summary["per_type"].items():
        print(
            f"| {code} | {row['variants']} | {row['bug']} | {row['equivalent']} | {row['invalid']} | {row['validity']} |"
        )
    print(f"wrote {args.out}")
    return 0


def _evaluate(args) -> int:
    from trico.hlsbugs.detectors import make_detector
    from trico.hlsbugs.evaluate import evaluate, format_table

    detector = make_detector(
        args.detector,
        base_url=args.base_url,
        model=args.model,
        key_env=args.api_key_env,
        timeout=args.timeout,
    )
    result = evaluate(
        args.dataset, detector, args.split, args.limit, args.jobs, progress=not args.no_progress
    )
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


def _lint(args) -> int:
    from trico.hlsbugs.lint import lint_file

    findings = lint_file(args.file, args.top)
    if args.json:
        print(json.dumps([f.to_json() for f in findings], indent=1))
    else:
        for f in findings:
            print(f"{args.file}:{f.line}: {f.bug_type}: {f.message}")
        print(f"{len(findings)} finding(s)")
    return 1 if findings else 0
