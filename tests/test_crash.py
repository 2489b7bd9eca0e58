"""Crash consistency: devcert killed at every commit point, and what the next command finds.

Each operation that changes more than one file is run once per kill point: strace delivers
SIGKILL as the N-th rename (link, unlink, fsync, mkdir, rmdir) is entered, for every N the
operation reaches. After each kill the next devcert command must find the complete old or
the complete new state, checked by real TLS handshakes (tests/crashkit.py has the loop and
the checks). The counts are printed (pytest -s) for the closing note of a change.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from tests import crashkit, sandbox
from tests.crashkit import OPERATIONS, KillLoop
from tests.helpers import ROOT, UNIT, clean_env, require_sandbox, require_tool

pytestmark = pytest.mark.slow

#: Fewer kill points than this means the injection did not take effect (a broken strace, a
#: changed syscall): the test would then prove nothing, so it fails.
MIN_POINTS = {"ca-init": 3, "ca-init-force": 5, "import-mkcert": 5, "create": 5, "create-p12": 5, "sync": 8}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_kill_at_every_commit_point(name: str, tmp_path: Path) -> None:
    require_tool("strace", "the kill tests inject SIGKILL at each commit syscall")
    loop = KillLoop(OPERATIONS[name], tmp_path, clean_env())
    points = loop.run_all()
    print(f"{name}: killed at {sum(points.values())} points {points}")
    assert sum(points.values()) >= MIN_POINTS[name], points


#: The rotation's kill points, split in groups of about equal cost so xdist runs them side by side.
ROTATION_GROUPS = ("rename,link,mkdir,rmdir", "unlink", "fsync")


@pytest.mark.parametrize("syscalls", ROTATION_GROUPS)
def test_kill_rotation_at_every_commit_point(tmp_path: Path, syscalls: str) -> None:
    """`ca rotate` with the CA installed in the system store and an NSS database (private copies)."""
    require_sandbox()
    require_tool("strace", "the kill tests inject SIGKILL at each commit syscall")
    require_tool("certutil", "the rotation is checked in an NSS database too")
    require_tool("update-ca-certificates")
    # By module name, with the project on the path: crashkit imports tests.helpers, wherever it lives.
    res = sandbox.run([sys.executable, "-m", crashkit.__name__, "rotate", str(tmp_path / "rotate"), syscalls],
                      env=clean_env(PATH=os.environ["PATH"], PYTHONPATH=str(ROOT)), timeout=2400 * UNIT)
    assert res.returncode == 0, res.stderr[-4000:]
    points = json.loads(res.stdout.strip().splitlines()[-1])["points"]
    print(f"rotate ({syscalls}): killed at {sum(points.values())} points {points}")
    assert sum(points.values()) >= 5, points


def test_sandbox_leaves_no_folder_behind() -> None:
    require_sandbox()
    res = sandbox.run(["sh", "-c", 'printf %s "$SANDBOX_SCRATCH"'], timeout=30 * UNIT)
    assert res.returncode == 0 and res.stdout.startswith("/")
    assert not os.path.exists(res.stdout)
