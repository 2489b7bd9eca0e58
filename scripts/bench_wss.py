#!/usr/bin/env python3
"""Benchmark `devcert serve-wss` side by side with Node's `ws` echo server, in one run.

    python scripts/bench_wss.py [--seconds 2.5] [--reps 3] [--json]

Both servers run on a leaf from a throwaway CA, on 127.0.0.1, and are measured by the same
client (scripts/bench_wss_node/wss_client.js, a Node `ws` client, so the client is not the
bottleneck) with 1 KiB binary messages:

  rtt    one connection, one message in flight: round trips per second
  pipe   one connection, 64 messages in flight: echoed messages per second
  conn   4 loops opening and closing fresh connections (TCP + TLS + upgrade) per second

and the proxy overhead: round trips through `devcert serve-wss --proxy ws://...` against
round trips straight to that upstream ws:// server (Node `ws` on plain http), side by side with
what developers use instead, each as a wss:// -> ws:// proxy with the same leaf and upstream:
Caddy's `reverse_proxy`, local-ssl-proxy (npm, node-http-proxy) and nginx (one worker), each
when installed.

  memory  the server's resident memory per idle wss:// connection, --idle (1,000) held open by
          one Node client: (RSS with them - RSS before) / count, devcert against Node

Repetitions are interleaved (devcert, node, devcert, node, ...) so drift hits both alike;
the table shows medians and ratios. devcert runs as its real CLI (`python -m devcert
serve-wss`), with uvloop when it is installed. Needs node and npm `ws` in .cache/node
(scripts/test installs them). Prints a table, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchkit import clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "scripts" / "bench_wss_node"
NODE_MODULES = ROOT / ".cache" / "node" / "node_modules"
TRUST_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "NODE_OPTIONS", "REQUESTS_CA_BUNDLE")


def env(**extra: str) -> dict[str, str]:
    return clean_env(TRUST_VARS, **{"NODE_PATH": str(NODE_MODULES), **extra})


class Proc:
    """A server subprocess started now and waited on until it prints ``marker``."""

    def __init__(self, argv: list[str], marker: str, environ: dict[str, str], timeout: float = 30):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)
        deadline = time.monotonic() + timeout
        self.first = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            if marker in line:
                self.first = line.strip()
                return
        self.stop()
        raise SystemExit(f"bench_wss: {argv[0]} did not start: {self.proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


NGINX_CONF = """worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/t; proxy_temp_path {tmp}/t; fastcgi_temp_path {tmp}/t;
  uwsgi_temp_path {tmp}/t; scgi_temp_path {tmp}/t;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{
      proxy_pass http://127.0.0.1:{upstream};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_buffering off;
    }}
  }}
}}
"""


def start_nginx(tmp: Path, port: int, upstream: int, cert: Path, key: Path) -> subprocess.Popen | None:
    """nginx as a reference wss:// -> ws:// proxy, or None when nginx is not installed."""
    exe = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None)
    if exe is None:
        return None
    folder = tmp / "nginx"
    (folder / "t").mkdir(parents=True)
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=folder, port=port, upstream=upstream, cert=cert, key=key))
    proc = subprocess.Popen([exe, "-p", str(folder), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    proc.wait(10)
    return None


CADDYFILE = """{{
  admin off
  auto_https off
  skip_install_trust
  storage file_system {tmp}/data
  log {{
    output discard
  }}
}}
https://localhost:{port} {{
  bind 127.0.0.1
  tls {cert} {key}
  reverse_proxy 127.0.0.1:{upstream}
}}
"""


def wait_port(proc: subprocess.Popen, port: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_caddy(tmp: Path, port: int, upstream: int, cert: Path, key: Path) -> subprocess.Popen | None:
    """Caddy's reverse_proxy as a wss:// -> ws:// proxy, or None when caddy is not installed."""
    exe = shutil.which("caddy")
    if exe is None:
        return None
    folder = tmp / "caddy"
    folder.mkdir()
    conf = folder / "Caddyfile"
    conf.write_text(CADDYFILE.format(tmp=folder, port=port, upstream=upstream, cert=cert, key=key))
    # HOME and XDG dirs in the scratch folder: Caddy writes nothing of the user's
    caddy_env = env(HOME=str(folder), XDG_DATA_HOME=str(folder / "data"), XDG_CONFIG_HOME=str(folder / "config"))
    proc = subprocess.Popen([exe, "run", "--config", str(conf), "--adapter", "caddyfile"], env=caddy_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if wait_port(proc, port):
        return proc
    stop(proc)
    return None


def start_local_ssl_proxy(node: str, port: int, upstream: int, cert: Path, key: Path) -> subprocess.Popen | None:
    """local-ssl-proxy (npm) as a wss:// -> ws:// proxy, or None when it is not installed. It listens on
    every interface; loopback.js, preloaded, keeps it on 127.0.0.1."""
    main = NODE_MODULES / "local-ssl-proxy" / "build" / "main.js"
    if not main.is_file():
        return None
    proc = subprocess.Popen([node, "-r", str(NODE_DIR / "loopback.js"), str(main), "--source", str(port),
                             "--target", str(upstream), "--hostname", "127.0.0.1", "--cert", str(cert),
                             "--key", str(key)], env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if wait_port(proc, port):
        return proc
    stop(proc)
    return None


def rss_kib(pid: int) -> int:
    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def idle_memory(node: str, url: str, ca: Path, pid: int, count: int) -> float:
    """KiB of the server's resident memory per idle wss:// connection, ``count`` held open."""
    measure(node, url, ca, "rtt", 0.3)  # warm: whatever loads on the first connection is loaded
    before = rss_kib(pid)
    client = subprocess.Popen([node, str(NODE_DIR / "wss_client.js"), "--url", url, "--ca", str(ca), "--mode", "hold",
                               "--count", str(count), "--concurrency", "50"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        line = client.stdout.readline()  # type: ignore[union-attr]
        if '"held"' not in line:
            raise SystemExit(f"bench_wss: holding {count} connections to {url} failed: {client.stderr.read()[-500:]}")  # type: ignore[union-attr]
        time.sleep(1.0)
        after = rss_kib(pid)
    finally:
        client.stdin.close()  # type: ignore[union-attr]
        try:
            client.wait(30)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait()
    return (after - before) / count


def measure(node: str, url: str, ca: Path | None, mode: str, seconds: float) -> float:
    argv = [node, str(NODE_DIR / "wss_client.js"), "--url", url, "--mode", mode, "--seconds", str(seconds),
            "--size", "1024", "--window", "64", "--concurrency", "4"]
    if ca is not None:
        argv += ["--ca", str(ca)]
    out = subprocess.run(argv, capture_output=True, text=True, env=env(), timeout=seconds + 30)
    if out.returncode != 0:
        raise SystemExit(f"bench_wss: client failed on {url} ({mode}): {out.stderr.strip()}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["rate"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.5, help="length of each measurement")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions (medians are reported)")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections held for the memory measure")
    args = parser.parse_args()

    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "ws").is_dir():
        print("bench_wss: needs node and npm ws in .cache/node (run scripts/test once)", file=sys.stderr)
        return 1
    sys.path.insert(0, str(ROOT))
    from devcert import serve

    try:
        import uvloop  # noqa: F401

        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"

    with tempfile.TemporaryDirectory(prefix="devcert-bench-wss-") as tmp:
        caroot = Path(tmp) / "ca"
        os.environ["DEVCERT_CAROOT"] = str(caroot)
        ca, leaf = serve.ensure_certificate(serve.DEFAULT_NAMES)
        ca_file = Path(ca.cert_path)
        py_env = env(DEVCERT_CAROOT=str(caroot), PYTHONPATH=str(ROOT))

        procs: list[Proc] = []
        nginx: subprocess.Popen | None = None
        others: list[subprocess.Popen | None] = []
        memory: dict[str, float] = {}
        try:
            dport, nport, uport, pport = free_port(), free_port(), free_port(), free_port()
            procs.append(Proc([sys.executable, "-m", "devcert", "serve-wss", "--port", str(dport)], "Serving", py_env))
            if loop_name == "uvloop":  # also measure plain asyncio, to show what uvloop brings here
                aport = free_port()
                procs.append(Proc([sys.executable, "-m", "devcert", "serve-wss", "--port", str(aport)], "Serving",
                                  {**py_env, "DEVCERT_NO_UVLOOP": "1"}))
            procs.append(Proc([node, str(NODE_DIR / "node_echo_server.js"), "--cert", str(leaf.cert_path),
                               "--key", str(leaf.key_path), "--port", str(nport)], "READY", env()))
            procs.append(Proc([node, str(NODE_DIR / "node_echo_server.js"), "--plain", "--port", str(uport)], "READY", env()))
            procs.append(Proc([sys.executable, "-m", "devcert", "serve-wss", "--port", str(pport),
                               "--proxy", f"ws://127.0.0.1:{uport}"], "Serving", py_env))
            ngx_port = free_port()
            nginx = start_nginx(Path(tmp), ngx_port, uport, Path(leaf.cert_path), Path(leaf.key_path))
            targets = {
                "devcert": (f"wss://localhost:{dport}/ws", ca_file),
                "node": (f"wss://localhost:{nport}/ws", ca_file),
                "upstream-direct": (f"ws://127.0.0.1:{uport}/ws", None),
                "via-proxy": (f"wss://localhost:{pport}/ws", ca_file),
            }
            plan = [("rtt", "devcert"), ("rtt", "node"), ("pipe", "devcert"), ("pipe", "node"),
                    ("conn", "devcert"), ("conn", "node"), ("rtt", "upstream-direct"), ("rtt", "via-proxy")]
            if nginx is not None:
                targets["via-nginx"] = (f"wss://localhost:{ngx_port}/ws", ca_file)
                plan += [("rtt", "via-nginx"), ("rtt", "via-proxy")]
            caddy_port, lsp_port = free_port(), free_port()
            caddy = start_caddy(Path(tmp), caddy_port, uport, Path(leaf.cert_path), Path(leaf.key_path))
            lsp = start_local_ssl_proxy(node, lsp_port, uport, Path(leaf.cert_path), Path(leaf.key_path))
            others += [caddy, lsp]
            if caddy is not None:
                targets["via-caddy"] = (f"wss://localhost:{caddy_port}/ws", ca_file)
                plan += [("rtt", "via-caddy"), ("rtt", "via-proxy")]
            if lsp is not None:
                targets["via-local-ssl-proxy"] = (f"wss://localhost:{lsp_port}/ws", ca_file)
                plan += [("rtt", "via-local-ssl-proxy"), ("rtt", "via-proxy")]
            if loop_name == "uvloop":
                targets["devcert-asyncio"] = (f"wss://localhost:{aport}/ws", ca_file)
                plan += [("rtt", "devcert-asyncio"), ("pipe", "devcert-asyncio"), ("conn", "devcert-asyncio"), ("rtt", "node")]
            results: dict[str, dict[str, list[float]]] = {}
            for rep in range(args.reps):
                # alternate which side goes first in each pair, so neither always runs warm
                order = plan if rep % 2 == 0 else [p for i in range(0, len(plan), 2) for p in (plan[i + 1], plan[i])]
                for mode, target in order:
                    url, ca_arg = targets[target]
                    rate = measure(node, url, ca_arg, mode, args.seconds)
                    group = "proxy" if target == "upstream-direct" or target.startswith("via-") else mode
                    results.setdefault(group, {}).setdefault(target, []).append(rate)
            # memory per idle connection, one server after the other (each alone holds its connections)
            pids = {"devcert": procs[0].proc.pid, "node": procs[2 if loop_name == "uvloop" else 1].proc.pid}
            if loop_name == "uvloop":
                pids["devcert-asyncio"] = procs[1].proc.pid
            for name, pid in pids.items():
                url, ca_arg = targets[name]
                memory[name] = idle_memory(node, url, ca_file, pid, args.idle)
        finally:
            for p in procs:
                p.stop()
            for other in others:
                stop(other)
            if nginx is not None:
                nginx.terminate()
                try:
                    nginx.wait(10)
                except subprocess.TimeoutExpired:
                    nginx.kill()
                    nginx.wait()

    med = {group: {t: statistics.median(v) for t, v in sides.items()} for group, sides in results.items()}
    report = {
        "event_loop": loop_name,
        "seconds_each": args.seconds,
        "reps": args.reps,
        "message_bytes": 1024,
        "runs": results,
        "medians": med,
        "ratios_devcert_over_node": {m: med[m]["devcert"] / med[m]["node"] for m in ("rtt", "pipe", "conn")},
        "proxy_added_rtt_percent": (med["proxy"]["upstream-direct"] / med["proxy"]["via-proxy"] - 1) * 100,
        # the same added time against plain wss:// to Node (TLS included on both sides): what the hop costs
        "proxy_added_rtt_percent_vs_node_wss": (med["rtt"]["node"] / med["proxy"]["via-proxy"] - 1) * 100,
    }
    report["peer_proxy_added_rtt_percent"] = {
        peer: (med["proxy"]["upstream-direct"] / med["proxy"][f"via-{peer}"] - 1) * 100
        for peer in ("nginx", "caddy", "local-ssl-proxy") if f"via-{peer}" in med["proxy"]}
    if "via-nginx" in med["proxy"]:
        report["nginx_proxy_added_rtt_percent"] = report["peer_proxy_added_rtt_percent"]["nginx"]
    report["idle_connections"] = args.idle
    report["kib_per_idle_connection"] = memory
    report["memory_ratio_devcert_over_node"] = memory["devcert"] / memory["node"] if memory.get("node") else None
    if not args.json:
        labels = {"rtt": "round trips/s (1 in flight)", "pipe": "pipelined msgs/s (64 in flight)",
                  "conn": "new connections/s (TCP+TLS+upgrade)"}
        print(f"devcert serve-wss ({loop_name}) vs Node ws on https.createServer; 1 KiB messages; "
              f"medians of {args.reps} x {args.seconds:g}s, interleaved")
        print(f"{'measure':38} {'devcert':>10} {'node':>10} {'ratio':>7}")
        for m in ("rtt", "pipe", "conn"):
            print(f"{labels[m]:38} {med[m]['devcert']:10.0f} {med[m]['node']:10.0f} {report['ratios_devcert_over_node'][m]:7.2f}")
        if loop_name == "uvloop":
            for m in ("rtt", "pipe", "conn"):
                print(f"{labels[m] + ', asyncio loop':38} {med[m]['devcert-asyncio']:10.0f} {med[m]['node']:10.0f} "
                      f"{med[m]['devcert-asyncio'] / med[m]['node']:7.2f}")
        print(f"{'proxy: round trips/s direct ws://':38} {med['proxy']['upstream-direct']:10.0f}")
        print(f"{'proxy: round trips/s via --proxy wss://':38} {med['proxy']['via-proxy']:10.0f}")
        print(f"{'proxy: added round-trip time':38} {report['proxy_added_rtt_percent']:9.0f}%"
              f"   (vs Node wss:// direct: {report['proxy_added_rtt_percent_vs_node_wss']:.0f}%)")
        for peer, added in report["peer_proxy_added_rtt_percent"].items():
            print(f"{'peer: round trips/s via ' + peer:38} {med['proxy']['via-' + peer]:10.0f}")
            print(f"{'peer: ' + peer + ' added round-trip time':38} {added:9.0f}%")
        for name, kib in memory.items():
            print(f"{'KiB per idle wss:// conn, ' + name:38} {kib:10.1f}")
        if report["memory_ratio_devcert_over_node"] is not None:
            print(f"{'memory per idle conn, devcert / node':38} {report['memory_ratio_devcert_over_node']:10.2f}")
    print(json.dumps(report, indent=None if not args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
