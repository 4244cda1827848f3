"""Without Triton (`make demo` installs trico without it) every module imports and the torch path runs."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    sys.modules["triton"] = None  # `import triton` now raises ImportError, as when it is not installed
    import torch
    import trico
    from tests.helpers import tiny_model
    from trico.engine.generator import Generator
    from trico.engine.kv_cache import StaticKVCache
    from trico.quant.api import quantize

    failed = []
    for m in pkgutil.walk_packages(trico.__path__, "trico."):
        if not m.name.endswith("__main__"):
            try:
                importlib.import_module(m.name)
            except Exception as exc:
                failed.append(f"{m.name}: {exc!r}")
    assert not failed, failed
    model = tiny_model(seed=3)
    quantize(model, "int4-rtn-g32", progress=False)
    with torch.no_grad():
        out = list(Generator(model, StaticKVCache(model.config, 1, 32)).generate([1, 2, 3], 4))
    assert len(out) == 4, out
    print("ok")
    """
)


def test_every_module_imports_and_a_quantized_model_generates_without_triton():
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]
