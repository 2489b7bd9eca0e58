#!/usr/bin/env python3
"""Benchmark `devcert acme` side by side with Pebble, in one run: lego obtaining certificates.

    python scripts/bench_acme.py [--certs 8] [--reps 3] [--json]

The same client (lego), the same challenge (http-01 from one webroot served on 127.0.0.1 by a
static file server in this process, so four lego runs at once can share the challenge port),
the same names (``bench-N.localhost``) against:

  devcert   `devcert acme --port 0 --json --http-port PORT` on a throwaway CAROOT
  pebble    Debian's `pebble` with its test configuration (listen address, httpPort), its
            listener certificate from the same throwaway CA, PEBBLE_VA_NOSLEEP=1 (no random
            validation delay) and PEBBLE_WFE_NONCEREJECT=0 (no deliberately rejected nonces:
            both would only slow Pebble down), names resolved to 127.0.0.1 by
            pebble-challtestsrv's DNS (`-dnsserver`), as Pebble's own test set-up does

Two loads: ``seq`` one lego run after another, ``par4`` four workers at once; each worker has
registered its account before timing starts, so a run is newOrder, one http-01, finalize and
download. Repetitions alternate devcert, pebble, devcert, ... so drift hits both alike; the
table shows certificates per second (medians) and devcert/pebble ratios. Prints a table, then
one JSON object.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchkit import clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
TRUST_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "LEGO_CA_CERTIFICATES")
TIMEOUT = 120


def env(**extra: str) -> dict[str, str]:
    return clean_env(TRUST_VARS, **extra)


def wait_port(port: int, proc: subprocess.Popen[Any], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on port {port}")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class Webroot:
    def __init__(self, root: Path) -> None:
        (root / ".well-known" / "acme-challenge").mkdir(parents=True, exist_ok=True)
        self.root = root
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Devcert:
    name = "devcert"

    def __init__(self, work: Path, http_port: int, caroot: Path) -> None:
        exe = Path(sys.executable).with_name("devcert")
        self.proc = subprocess.Popen([str(exe), "acme", "--port", "0", "--json", "--http-port", str(http_port)],
                                     env=env(DEVCERT_CAROOT=str(caroot)), stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        info = json.loads(self.proc.stdout.readline())
        self.directory, self.ca_file = info["directory"], info["ca"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class Pebble:
    name = "pebble"

    def __init__(self, work: Path, http_port: int, caroot: Path) -> None:
        sys.path.insert(0, str(ROOT))
        from devcert import LocalCA

        ca = LocalCA.load(caroot)
        leaf = ca.issue("localhost", "127.0.0.1")
        (work / "pebble-cert.pem").write_bytes(leaf.cert_pem)
        (work / "pebble-key.pem").write_bytes(leaf.key_pem)
        port, dns_port, mgmt = free_port(), free_port(), free_port()
        (work / "pebble-config.json").write_text(json.dumps({"pebble": {
            "listenAddress": f"127.0.0.1:{port}", "managementListenAddress": f"127.0.0.1:{free_port()}",
            "certificate": str(work / "pebble-cert.pem"), "privateKey": str(work / "pebble-key.pem"),
            "httpPort": http_port, "tlsPort": free_port(), "ocspResponderURL": "",
            "externalAccountBindingRequired": False}}))
        self.dns = subprocess.Popen(["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                                     "-dns01", f"127.0.0.1:{dns_port}", "-http01", "", "-https01", "",
                                     "-tlsalpn01", "", "-management", f"127.0.0.1:{mgmt}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proc = subprocess.Popen(["pebble", "-config", str(work / "pebble-config.json"),
                                      "-dnsserver", f"127.0.0.1:{dns_port}"],
                                     env=env(PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0"),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_port(port, self.proc, "pebble")
        self.directory, self.ca_file = f"https://127.0.0.1:{port}/dir", str(ca.cert_path)

    def stop(self) -> None:
        for p in (self.proc, self.dns):
            p.terminate()
            p.wait(30)


def lego(server: Any, path: Path, name: str, webroot: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(["lego", "--path", str(path), "--server", server.directory, "--accept-tos", "--email",
                             "bench@example.com", "--domains", name, "--http", "--http.webroot", str(webroot), "run"],
                            env=env(LEGO_CA_CERTIFICATES=server.ca_file, HOME=str(path)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
    elapsed = time.perf_counter() - start
    if os.environ.get("BENCH_ACME_DEBUG"):
        print(result.stdout, file=sys.stderr)
    if result.returncode != 0:
        raise SystemExit(f"lego against {server.name} failed for {name}:\n{result.stdout[-3000:]}")
    return elapsed


def measure(kind: type, work: Path, webroot: Webroot, caroot: Path, certs: int, workers: int, rep: int) -> float:
    """Certificates per second with ``workers`` lego runs at a time (accounts registered first)."""
    folder = work / f"{kind.name}-{workers}-{rep}"
    folder.mkdir()
    server = kind(folder, webroot.port, caroot)
    try:
        paths = [folder / f"lego-{w}" for w in range(workers)]
        for w, path in enumerate(paths):  # account registration, not timed
            lego(server, path, f"warm-{kind.name}-{workers}-{rep}-{w}.localhost", webroot.root)
        names = [f"bench-{kind.name}-{workers}-{rep}-{i}.localhost" for i in range(certs)]
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda i: lego(server, paths[i % workers], names[i], webroot.root), range(certs)))
        return certs / (time.perf_counter() - start)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--certs", type=int, default=8, help="certificates per measurement")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args()
    for tool in ("lego", "pebble", "pebble-challtestsrv"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install lego pebble; scripts/test installs them)")
    results: dict[str, dict[str, list[float]]] = {"seq": {"devcert": [], "pebble": []},
                                                  "par4": {"devcert": [], "pebble": []}}
    with tempfile.TemporaryDirectory(prefix="devcert-bench-acme-") as tmp:
        work = Path(tmp)
        caroot = work / "caroot"
        subprocess.run([str(Path(sys.executable).with_name("devcert")), "ca", "init"],
                       env=env(DEVCERT_CAROOT=str(caroot)), check=True, capture_output=True)
        webroot = Webroot(work / "www")
        try:
            for rep in range(args.reps):
                for load, workers in (("seq", 1), ("par4", 4)):
                    for kind in (Devcert, Pebble):
                        results[load][kind.name].append(measure(kind, work, webroot, caroot, args.certs, workers, rep))
        finally:
            webroot.close()
    summary = {load: {"devcert_per_s": statistics.median(r["devcert"]), "pebble_per_s": statistics.median(r["pebble"]),
                      "ratio": statistics.median(r["devcert"]) / statistics.median(r["pebble"]), "runs": r}
               for load, r in results.items()}
    out = {"certs": args.certs, "reps": args.reps, "lego": subprocess.run(["lego", "--version"], capture_output=True,
                                                                           text=True).stdout.strip(), **summary}
    if not args.json:
        print(f"lego obtaining {args.certs} certificates (http-01, webroot), median of {args.reps}; certificates/s")
        print(f"{'load':<8}{'devcert acme':>14}{'pebble':>10}{'devcert/pebble':>16}")
        for load, s in summary.items():
            print(f"{load:<8}{s['devcert_per_s']:>14.2f}{s['pebble_per_s']:>10.2f}{s['ratio']:>16.2f}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
