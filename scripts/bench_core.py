#!/usr/bin/env python3
"""Benchmark devcert's core side by side with its peers, in one run.

    scripts/bench create     # `devcert create localhost` vs mkcert, mkcert -ecdsa, python -c pass,
                             # and the import floor of cryptography
    scripts/bench issue      # in-process issuance: LocalCA.ephemeral().issue() vs trustme

Start-up is measured on a regular (non-editable) install in .cache/bench-venv, as a user gets
from `pip install .`. Repetitions are interleaved (every round runs each command once, in a
shuffled order) so drift in the machine's load hits all of them alike; results are medians
and ratios of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".cache" / "bench-venv"
FLOOR = "from cryptography import x509; from cryptography.hazmat.primitives.asymmetric import ec"


def say(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


def ensure_mkcert() -> str:
    path = shutil.which("mkcert")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("installing mkcert (Debian package) for the comparison")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "mkcert"], check=True, env=env, stdout=subprocess.DEVNULL)
        path = shutil.which("mkcert")
    if not path:
        sys.exit("bench: mkcert is missing and cannot be installed here (needs root and apt-get)")
    return path


def ensure_bench_venv() -> Path:
    """A venv with devcert installed as users install it (not editable), refreshed each run."""
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        say(f"creating {BENCH_VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    say("installing devcert into the bench venv (pip install .)")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "trustme", str(ROOT)],
                   check=True, stdout=subprocess.DEVNULL)
    return python


def time_cmd(argv: list[str], env: dict[str, str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def bench_create(rounds: int) -> dict:
    mkcert = ensure_mkcert()
    python = ensure_bench_venv()
    devcert = python.with_name("devcert")
    with tempfile.TemporaryDirectory(prefix="devcert-bench-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVCERT_")}
        env.update(DEVCERT_CAROOT=str(work / "devcert-ca"), CAROOT=str(work / "mkcert-ca"), TRUST_STORES="")
        # Both CAs exist before timing starts: we time issuing, not first-run CA creation.
        subprocess.run([str(devcert), "ca", "init"], env=env, cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([mkcert, "localhost"], env=env, cwd=tmp, check=True, capture_output=True)
        commands = {
            "devcert create localhost": [str(devcert), "create", "localhost"],
            "mkcert localhost": [mkcert, "localhost"],
            "mkcert -ecdsa localhost": [mkcert, "-ecdsa", "localhost"],
            "python -c pass": [str(python), "-c", "pass"],
            "floor (import x509, ec)": [str(python), "-c", FLOOR],
        }
        for argv in commands.values():  # warm the page cache
            time_cmd(argv, env, tmp)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            order = list(commands)
            random.shuffle(order)
            for name in order:
                samples[name].append(time_cmd(commands[name], env, tmp))
    med = {name: statistics.median(v) * 1000 for name, v in samples.items()}
    dev = med["devcert create localhost"]
    return {
        "rounds": rounds,
        "median_ms": {k: round(v, 1) for k, v in med.items()},
        "ratios": {
            "devcert / mkcert": round(dev / med["mkcert localhost"], 2),
            "devcert / mkcert -ecdsa": round(dev / med["mkcert -ecdsa localhost"], 2),
            "devcert / floor": round(dev / med["floor (import x509, ec)"], 2),
            "devcert / python -c pass": round(dev / med["python -c pass"], 2),
        },
        "targets": {"devcert / mkcert <= 1.0": dev <= med["mkcert localhost"],
                    "devcert / floor <= 1.3": dev <= 1.3 * med["floor (import x509, ec)"]},
    }


_ISSUE_CODE = r"""
import json, sys, time
kind, key_type, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
if kind == "devcert":
    from devcert import LocalCA
    ca = LocalCA.ephemeral(key_type)
    issue = lambda: ca.issue("localhost", key_type=key_type)
else:
    import trustme
    kt = trustme.KeyType.ECDSA if key_type == "ecdsa" else trustme.KeyType.RSA
    ca = trustme.CA(key_type=kt)
    issue = lambda: ca.issue_cert("localhost", key_type=kt)
issue()
n, start = 0, time.perf_counter()
while time.perf_counter() - start < seconds and n < 200000:
    issue(); n += 1
print(json.dumps(n / (time.perf_counter() - start)))
"""


def bench_issue(rounds: int, seconds: float) -> dict:
    python = ensure_bench_venv()
    results: dict[str, dict[str, list[float]]] = {}
    for key_type in ("ecdsa", "rsa"):
        per = {"devcert": [], "trustme": []}
        for _ in range(rounds):
            order = ["devcert", "trustme"]
            random.shuffle(order)
            for kind in order:
                out = subprocess.run([str(python), "-c", _ISSUE_CODE, kind, key_type, str(seconds)],
                                     check=True, capture_output=True, text=True)
                per[kind].append(float(out.stdout))
        results[key_type] = per
    summary = {}
    for key_type, per in results.items():
        d, t = statistics.median(per["devcert"]), statistics.median(per["trustme"])
        summary[key_type] = {"devcert leaves/s": round(d), "trustme leaves/s": round(t), "ratio": round(d / t, 2)}
    return {"rounds": rounds, "seconds_each": seconds, "median": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="*", default=["create", "issue"], choices=["create", "issue"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args()
    results = {}
    if "create" in args.which:
        say(f"timing `devcert create localhost` against mkcert ({args.rounds} interleaved rounds)")
        results["create"] = bench_create(args.rounds)
    if "issue" in args.which:
        say("timing in-process issuance against trustme")
        results["issue"] = bench_issue(max(3, args.rounds // 3), 1.0)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    if "create" in results:
        r = results["create"]
        print(f"\nStart-up and one certificate (median of {r['rounds']} interleaved rounds)")
        for name, ms in r["median_ms"].items():
            print(f"  {name:28s} {ms:7.1f} ms")
        for name, ratio in r["ratios"].items():
            print(f"  {name:28s} {ratio:7.2f}x")
        for name, ok in r["targets"].items():
            print(f"  target {name:21s} {'met' if ok else 'NOT met'}")
    if "issue" in results:
        r = results["issue"]
        print(f"\nIn-process issuance (median of {r['rounds']} runs of {r['seconds_each']} s each)")
        for key_type, row in r["median"].items():
            print(f"  {key_type:6s} devcert {row['devcert leaves/s']:6d}/s   trustme {row['trustme leaves/s']:6d}/s"
                  f"   ratio {row['ratio']:.2f}x")
    print("\n" + json.dumps(results))


if __name__ == "__main__":
    main()
