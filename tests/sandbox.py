"""Run a command with this machine's trust stores swapped for private copies.

The project's own version of ``shared/sandbox/private-trust``: the command runs under
``unshare --mount`` in a private mount namespace where the system CA bundle and its source
folders, Debian's Java keystore folders and a fresh HOME (so ``~/.pki/nssdb`` and Firefox
profiles) are private tmpfs copies. Whatever the command installs or removes vanishes with
it; the machine's real stores are never written. Needs root and util-linux's ``unshare``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Folders shadowed by private copies inside the namespace.
SHADOWED = (
    "/etc/ssl/certs",
    "/usr/local/share/ca-certificates",
    "/etc/ca-certificates",
    "/etc/pki",
    "/usr/share/pki/trust",
    "/var/lib/ca-certificates-java",
    "/etc/ssl/certs/java",
)

# The inner script: make a tmpfs, copy each folder into it and bind the copy over the
# original, silence Debian's update hooks (the Java one calls dpkg, which reaches outside),
# give the command a fresh HOME, then exec it. Paths of JDK cacerts files that are not under
# the shadowed folders are shadowed one by one (file bind mounts), listed in $EXTRA_FILES.
_INNER = r"""
set -eu
scratch=$SANDBOX_SCRATCH
mount -t tmpfs tmpfs "$scratch"
for dir in $SHADOW_DIRS; do
  [ -d "$dir" ] || continue
  copy="$scratch/stores/$(printf '%s' "$dir" | tr / _)"
  mkdir -p "$copy"
  cp -a "$dir/." "$copy/"
  mount --bind "$copy" "$dir"
done
for file in $EXTRA_FILES; do
  [ -f "$file" ] || continue
  real=$(readlink -f "$file")
  copy="$scratch/files/$(printf '%s' "$real" | tr / _)"
  mkdir -p "$scratch/files"
  cp -a "$real" "$copy"
  mount --bind "$copy" "$real"
done
if [ -d /etc/ca-certificates/update.d ]; then mount -t tmpfs tmpfs /etc/ca-certificates/update.d; fi
export HOME="$scratch/home"
mkdir -p "$HOME"
cd "${SANDBOX_CWD:-$HOME}"
exec "$@"
"""


def unavailable_reason() -> str | None:
    """Why the sandbox cannot run here, or None when it can."""
    if sys.platform != "linux":
        return "the trust-store sandbox needs Linux mount namespaces"
    if os.geteuid() != 0:
        return "the trust-store sandbox needs root (unshare --mount)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is missing"
    return None


def java_cacerts_files() -> list[str]:
    """cacerts files of the JDKs on this machine (their real paths), to shadow too.

    Every runtime devcert could write outside the sandbox's fresh HOME: those under
    /usr/lib/jvm and /opt (one or two levels down: /opt/jdk-21, /opt/java/openjdk, macOS-style
    Contents/Home bundles), $JAVA_HOME's and the ``java`` on PATH's, and, so a change to
    devcert's discovery can never reach past the sandbox, whatever devcert's own JavaStore
    finds outside a HOME (given a HOME that does not exist).
    """
    import glob

    homes = [h for pattern in ("/usr/lib/jvm/*", "/usr/lib/jvm/*/*", "/opt/*", "/opt/*/*") for h in glob.glob(pattern)]
    if os.environ.get("JAVA_HOME"):
        homes.append(os.environ["JAVA_HOME"])
    java = shutil.which("java")
    if java:
        homes.append(os.path.dirname(os.path.dirname(os.path.realpath(java))))
    found = []
    for home in homes:
        for rel in ("lib/security/cacerts", "jre/lib/security/cacerts", "Contents/Home/lib/security/cacerts"):
            path = os.path.join(home, rel)
            if os.path.isfile(path):
                found.append(os.path.realpath(path))
    try:
        from devcert.trust.java import JavaStore
    except ImportError:
        pass
    else:
        found += [os.path.realpath(p) for p in JavaStore(user_home=Path("/nonexistent-sandbox-home")).keystores()]
    return sorted(set(found))


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside a fresh private trust sandbox and return its result (text mode).

    ``env`` is the complete environment of the command (HOME is replaced by the sandbox's).
    ``timeout`` has no default: callers give a multiple of tests.helpers.UNIT.
    """
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    full_env = dict(env if env is not None else os.environ)
    full_env["SHADOW_DIRS"] = " ".join(SHADOWED)
    full_env["EXTRA_FILES"] = " ".join(java_cacerts_files())
    if cwd:
        full_env["SANDBOX_CWD"] = cwd
    # The tmpfs is mounted on this folder inside the namespace only; outside it stays empty, and
    # is removed when the command ends, so no run leaves a folder behind.
    scratch = tempfile.mkdtemp(prefix="devcert-sandbox.")
    full_env["SANDBOX_SCRATCH"] = scratch
    try:
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "bash", "-c", _INNER, "sandbox", *argv],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
    finally:
        try:
            os.rmdir(scratch)
        except OSError:
            shutil.rmtree(scratch, ignore_errors=True)
