"""Property: whatever a mutated example schedule file holds, loading it gives located findings, in bounded memory.

Hypothesis mutates the example schedules (schedules/*.yaml) the way the fuzzer of issue 15 did: bytes, tags,
dates, numbers, durations, cron fields, time zones, nesting, anchors, aliases and merge keys, size. Each
mutated set of files is loaded (and linted when it loads): nothing may raise but ConfigInvalid, no finding is
the safety net's CFG013 (an unmapped exception), every finding has a `file:line:col` and prints as one UTF-8 line, and the peak of Python allocations stays under a bound.
The work is bounded by the loader's limits (MAX_FILE_BYTES, MAX_DEPTH, MAX_VALUES), which the regression tests
in test_hostile.py assert by counting.
"""

from __future__ import annotations

import tempfile
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.config import ConfigInvalid, Finding, lint, load_config
from scheduler.config.loader import MAX_FILE_BYTES

EXAMPLES = {p.name: p.read_bytes() for p in sorted((Path(__file__).parents[3] / "schedules").glob("*.yaml"))}
PEAK_LIMIT = 96 * 1024 * 1024
"""Generous: a mutated example set peaks at a few MB; billion laughs peaked at 2.2 GB before the limits."""

BYTES = [
    b"\x00",
    b"\x0c",
    b"\x1b[31m",
    b"\x85",
    b"\xff",
    b"\xed\xa0\x80",
    b"\t",
    b"\r",
    b"\n",
    b"\xef\xbb\xbf",
]
TAGS = ["!foo ", "!!python/object/apply:os.system ", "!!binary ", "!!timestamp ", "!!int ", "!!float ", "!!bool ",
        "!!set ", "!!omap ", "!!map ", "!!seq ", "!!str ", "!!null ", "!<tag:x> "]  # fmt: skip
VALUES = [
    "2024-02-30", "2024-13-01", "0000-00-00", "2024-02-29T25:00:00", ".inf", "-.inf", ".nan", "1e400", "1e300",
    "9" * 5000, "-0", "0x_", "99999999999999999999d", "1e300s", "-5s", "0s", "367d", "25h", "America", "posix",
    "right/UTC", "localtime", "../../etc/passwd", '"UTC\\0"', '"\\ud800"', '"a\\nb\\e[2J"', "R * * * *",
    "H * * * *", "0 0 L * *", "0 0 * * 1#2", "@reboot", "0 0 * * * *", "*/0 * * * *", "5-1 * * * *", "~", "[]",
    "{}", "*undefined", "&a", "<<", "? x", "- x", "'", '"', "key_strict_fifo",
]  # fmt: skip


def _insert(text: bytes, at: int, piece: bytes) -> bytes:
    return text[:at] + piece + text[at:]


def _value_spans(text: bytes) -> list[tuple[int, int]]:
    """Where each `key: value` line's value is (start, end), so a mutation can replace a value."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        colon = line.find(b": ")
        if colon >= 0 and not line.lstrip().startswith(b"#"):
            spans.append((pos + colon + 2, pos + len(line.rstrip(b"\r\n"))))
        pos += len(line)
    return spans


def laughs(levels: int) -> bytes:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return ("\n".join(lines) + "\n").encode()


numbers = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
dates = st.tuples(st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32)).map(
    lambda ymd: f"{ymd[0]:04d}-{ymd[1]:02d}-{ymd[2]:02d}"
)
durations = st.tuples(
    st.integers(min_value=0, max_value=10**15), st.sampled_from(["ms", "s", "m", "h", "d", ""])
).map(lambda nu: f"{nu[0]}{nu[1]}")
nesting = st.tuples(st.integers(1, 80), st.sampled_from(["[", "{a: "])).map(
    lambda nb: nb[1] * nb[0] + "1" + ("]" if nb[1] == "[" else "}") * nb[0]
)
values = st.one_of(st.sampled_from(VALUES), numbers, dates, durations, nesting)


@st.composite
def mutation(draw: st.DrawFn, text: bytes) -> bytes:
    kind = draw(st.sampled_from(["bytes", "tag", "value", "anchor", "laughs", "merge", "size", "cut"]))
    at = draw(st.integers(0, len(text)))
    spans = _value_spans(text)
    if kind == "bytes":
        return _insert(text, at, draw(st.one_of(st.sampled_from(BYTES), st.binary(min_size=1, max_size=4))))
    if kind in {"tag", "value"} and spans:
        start, end = draw(st.sampled_from(spans))
        if kind == "tag":
            return _insert(text, start, draw(st.sampled_from(TAGS)).encode())
        return text[:start] + draw(values).encode("utf-8", "surrogatepass") + text[end:]
    if kind == "anchor" and spans:
        first, second = draw(st.sampled_from(spans)), draw(st.sampled_from(spans))
        with_anchor = _insert(text, first[0], b"&x ")
        shift = 3 if second[0] >= first[0] else 0
        return with_anchor[: second[0] + shift] + b"*x" + with_anchor[second[1] + shift :]
    if kind == "laughs":
        return text + laughs(draw(st.integers(1, 4)))
    if kind == "merge":
        block = draw(st.sampled_from([b"<<: *x\n", b"<<: [*x, *x]\n", b"  <<: *x\n", b"x: &x { <<: *x }\n"]))
        return _insert(text, draw(st.sampled_from([0, len(text), at])), block)
    if kind == "size":
        return text + b"#" * draw(st.sampled_from([1000, MAX_FILE_BYTES + 1]))
    return text[:at] + text[at + draw(st.integers(1, 40)) :]


@st.composite
def mutated_examples(draw: st.DrawFn) -> dict[str, bytes]:
    """One example file mutated one to three times, beside queues.yaml (which it refers to)."""
    name = draw(st.sampled_from(sorted(EXAMPLES)))
    files = {"queues.yaml": EXAMPLES["queues.yaml"], name: EXAMPLES[name]}
    for _ in range(draw(st.integers(1, 3))):
        files[name] = draw(mutation(files[name]))
    return files


def _check_printable(finding: Finding) -> None:
    line = finding.format()
    assert line.isprintable(), line
    line.encode("utf-8")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_examples())
def test_mutated_examples_give_located_findings_in_bounded_memory(files: dict[str, bytes]) -> None:
    """load_config raises only ConfigInvalid, each finding located and one printable line; lint never raises."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, content in files.items():
            (root / name).write_bytes(content)
        tracemalloc.start()
        try:
            findings = _findings(root)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < PEAK_LIMIT
    for finding, invalid in findings:
        assert finding.code != "CFG013", finding  # an exception no check maps to a finding: a bug
        if invalid:
            assert finding.location is not None, finding
            assert finding.location.file.parent == root
        _check_printable(finding)


def _findings(root: Path) -> list[tuple[Finding, bool]]:
    """The findings of loading `root` (True: it is invalid, ConfigInvalid's), or of linting it (False)."""
    try:
        loaded = load_config([root])
    except ConfigInvalid as exc:
        if not exc.findings:
            raise AssertionError("ConfigInvalid without findings") from exc
        return [(f, True) for f in exc.findings]
    return [(f, False) for f in lint(loaded)]
