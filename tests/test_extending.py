"""docs/extending.md runs: its code blocks, in order, in a fresh process (registrations made
there do not leak into the other tests)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def test_the_extension_examples_run_from_user_code(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 4
    script = tmp_path / "user_code.py"
    script.write_text("\n\n".join(blocks))
    env_cache = tmp_path / "cache"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=600,
                          env={**os.environ, "SEMSIM_CACHE": str(env_cache), "OMP_NUM_THREADS": "1",
                               # 40 items on the bit-true link: compiling its kernels would cost more than it saves
                               "SEMSIM_PHY_COMPILE": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "bz2 bits per 8x8 digit" in proc.stdout
    assert not list(tmp_path.glob("results*")), "simulator.run without out writes no results"


def test_builtins_come_first_whenever_user_code_registers():
    code = ("from simulator.registry import PIPELINES, CODERS\n"
            "from simulator.pipelines.spec import PipelineSpec\n"
            "from simulator.classical.source_coding import Coder\n"
            "PIPELINES.register('mine', PipelineSpec(description='x'))\n"
            "CODERS.register('png', Coder(lambda i: b'', lambda d, s: b'', description='mine'), replace=True)\n"
            "assert PIPELINES.names()[:4] == ['classical', 'vanilla-semantic', 'vanilla-fallback', 'contrastive'], "
            "PIPELINES.names()\n"
            "assert PIPELINES.names()[-1] == 'mine'\n"
            "assert CODERS.get('png').description == 'mine' and CODERS.names()[:3] == ['raw', 'png', 'zlib']\n"
            "try:\n    PIPELINES.register('classical', PipelineSpec(description='y'))\n"
            "except ValueError as e:\n    assert 'already registered' in str(e)\nelse:\n    raise SystemExit(1)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
