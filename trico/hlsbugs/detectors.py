"""Bug detectors scored by the evaluation harness: the pragma lint, the sanitizer oracle, and an LLM.

A detector maps (kernel file, its test-bench context) to a Report: buggy or not, and typed, located
findings where it can say them. Detectors are registered by name with a factory taking CLI options.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from trico.errors import TricoError
from trico.hlsbugs.csim import CSimResult, run_batch
from trico.hlsbugs.lint import lint


@dataclass(frozen=True)
class Context:
    """What a detector may use besides the file: the kernel's name, test bench and golden dump."""

    kernel: str
    testbench: str
    golden: str
    include_dir: Path


@dataclass
class Report:
    """A detector's verdict on one file."""

    buggy: bool
    findings: list[tuple[str | None, int | None]] = field(default_factory=list)
    note: str = ""


class Detector:
    """Base class: `detect(source, ctx) -> Report`."""

    name = "detector"

    def detect(self, source: str, ctx: Context) -> Report:
        """Judge one kernel file."""
        raise NotImplementedError

    def detect_batch(self, sources: list[str], ctx: Context) -> list[Report]:
        """Judge several files of one kernel (detectors that can share work override this)."""
        return [self.detect(src, ctx) for src in sources]


class LintDetector(Detector):
    """The pragma lint: every rule violation is a typed finding at its line."""

    name = "lint"

    def detect(self, source: str, ctx: Context) -> Report:
        """Lint the file."""
        found = lint(source, ctx.kernel)
        return Report(bool(found), [(f.bug_type, f.line) for f in found])


_KIND_TO_TYPE = {"ubsan:shift": "SHFT", "ubsan:bounds": "OOB"}


class SanitizerDetector(Detector):
    """Differential C-simulation under ASan/UBSan: deviations from golden, typed where the evidence says."""

    name = "sanitizer"

    def detect(self, source: str, ctx: Context) -> Report:
        """Build, run and compare."""
        return self.detect_batch([source], ctx)[0]

    def detect_batch(self, sources: list[str], ctx: Context) -> list[Report]:
        """One compile for the whole batch (see csim.run_batch)."""
        return [_report(r) for r in run_batch(sources, ctx.testbench, ctx.golden, ctx.include_dir)]


def _report(r: CSimResult) -> Report:
    findings: list[tuple[str | None, int | None]] = []
    if r.status == "timeout":
        findings.extend(("INF", ln) for ln in r.lines or [None])
    elif r.status == "sanitizer":
        kind = _KIND_TO_TYPE.get(r.kind or "", "OOB" if (r.kind or "").startswith("asan:") else None)
        findings.extend((kind, ln) for ln in r.lines or [None])
    elif r.deviates:
        findings.append((None, None))
    findings.extend(("INIT", ln) for ln in r.uninit_warnings)
    return Report(r.deviates or bool(r.uninit_warnings), findings, r.status)


class LLMDetector(Detector):
    """Any model behind an OpenAI-compatible /chat/completions endpoint."""

    name = "llm"

    def __init__(self, base_url: str, model: str, key_env: str = "OPENAI_API_KEY", timeout: float = 120.0):
        from trico.hlsbugs.llm import ChatClient

        self.client = ChatClient.from_env(base_url, model, key_env, timeout=timeout)

    def detect(self, source: str, ctx: Context) -> Report:
        """Ask the model and parse its JSON answer."""
        from trico.hlsbugs.llm import parse_answer, render_messages

        reply = self.client.complete(render_messages(source, ctx.kernel))
        buggy, findings, err = parse_answer(reply)
        return Report(buggy, findings, err or "")


def _llm(opts: dict) -> Detector:
    if not opts.get("base_url") or not opts.get("model"):
        raise TricoError("the llm detector needs --base-url and --model")
    return LLMDetector(
        opts["base_url"], opts["model"], opts.get("key_env") or "OPENAI_API_KEY", opts.get("timeout") or 120.0
    )


DETECTORS: dict[str, Callable[[dict], Detector]] = {
    "lint": lambda opts: LintDetector(),
    "sanitizer": lambda opts: SanitizerDetector(),
    "llm": _llm,
}


def make_detector(name: str, **opts) -> Detector:
    """Build a registered detector; an unknown name is a TricoError."""
    if name not in DETECTORS:
        raise TricoError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}")
    return DETECTORS[name](opts)
