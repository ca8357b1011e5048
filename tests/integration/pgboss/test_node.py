"""pg-boss runs on the Node it supports: the pinned Node 22 from the npm registry, not the machine's `node`."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import pytest

from tests.interop import nodejs
from tests.interop.nodejs import (
    MINIMUM,
    NodeMissing,
    node_binary,
    node_version,
    parse_version,
    pinned_version,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_interop_node_is_the_pinned_node_22() -> None:
    """The helper's binary is the lockfile's Node (>= 22.12, pg-boss 12.38's engines), under node_modules."""
    assert node_version() >= MINIMUM
    assert node_version() == parse_version(pinned_version())
    assert node_binary().is_relative_to(nodejs.INTEROP / "node_modules")


def test_pgboss_declares_the_minimum_the_helper_checks() -> None:
    """MINIMUM is what the installed pg-boss itself declares (`engines.node`)."""
    package = json.loads((nodejs.INTEROP / "node_modules/pg-boss/package.json").read_text(encoding="utf-8"))
    assert package["engines"]["node"] == ">=" + ".".join(map(str, MINIMUM))


def _checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of tests/interop's lockfile in tmp_path, which the helper then takes for tests/interop."""
    shutil.copy(nodejs.INTEROP / "package-lock.json", tmp_path / "package-lock.json")
    monkeypatch.setattr(nodejs, "INTEROP", tmp_path)
    return tmp_path / "node_modules" / nodejs.package() / "bin" / "node"


def test_a_missing_node_says_run_dev_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _checkout(tmp_path, monkeypatch)
    with pytest.raises(NodeMissing, match=r"Node 22\.\d+\.\d+ not found at .*: run scripts/dev-setup"):
        node_binary.__wrapped__()


def test_a_node_older_than_22_12_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = _checkout(tmp_path, monkeypatch)
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\necho v20.20.2\n", encoding="utf-8")
    binary.chmod(0o755)
    with pytest.raises(
        NodeMissing, match=r"is Node v20\.20\.2, pg-boss needs >= 22\.12\.0: run scripts/dev-setup"
    ):
        node_binary.__wrapped__()
