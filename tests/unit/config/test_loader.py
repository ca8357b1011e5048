"""Loading schedule files: parsing, merging across files, locations, and malformed YAML."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from scheduler.config import ConfigInvalid, Finding, Location, Severity, load_config
from scheduler.config import loader as loader_module
from scheduler.types import BackendKind

if TYPE_CHECKING:
    from tests.unit.config.conftest import Errors, Load, Write

DIGEST = """\
schedules:
  digest:
    cron: "0 * * * *"
    cohort: { sql: select 1 }
    queue: plain
"""


def test_one_file_loads_into_a_typed_config(load: Load) -> None:
    """A valid file gives a Config whose queues and schedules are typed models."""
    loaded = load(DIGEST)
    assert loaded.config.queues["rollups"].backend is BackendKind.PROCRASTINATE
    assert loaded.config.schedules["digest"].queue == "plain"


def test_locations_point_at_scalar_values(load: Load) -> None:
    """The location of a scalar is where its value is written (1-based line and column)."""
    loaded = load(DIGEST)
    where = loaded.locations.of(("schedules", "digest", "cron"))
    assert (where.line, where.column) == (13, 11)


def test_locations_point_at_the_key_of_a_mapping(load: Load) -> None:
    """The location of a mapping is the line of the key that introduces it."""
    loaded = load(DIGEST)
    where = loaded.locations.of(("schedules", "digest"))
    assert (where.line, where.column) == (12, 3)


def test_locations_fall_back_to_the_nearest_ancestor(load: Load) -> None:
    """A path never written (a default) is located at its nearest written ancestor."""
    loaded = load(DIGEST)
    assert loaded.locations.of(("schedules", "digest", "stagger", "window")) == loaded.locations.of(
        ("schedules", "digest")
    )


def test_location_prints_as_file_line_column(tmp_path: Path) -> None:
    """str(Location) is `file:line:col`."""
    assert str(Location(tmp_path / "a.yaml", 12, 5)) == f"{tmp_path}/a.yaml:12:5"


def test_finding_without_location_formats_code_and_severity() -> None:
    """A finding without a location prints as `CODE severity: message`."""
    finding = Finding("CFG011", Severity.ERROR, "no schedule files given")
    assert finding.format() == "CFG011 error: no schedule files given"


def test_directory_merges_yaml_files_in_name_order(write: Write, tmp_path: Path) -> None:
    """A directory loads its *.yaml and *.yml files, sorted by name, into one config."""
    write("", name="a.yaml")
    write(
        "schedules:\n  other:\n    cron: '5 * * * *'\n    cohort: { sql: x }\n    queue: plain\n",
        name="c.yml",
        header=False,
    )
    write(DIGEST, name="b.yaml", header=False)
    (tmp_path / "notes.txt").write_text("not yaml")
    loaded = load_config([tmp_path])
    assert loaded.files == (tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yml")
    assert sorted(loaded.config.schedules) == ["digest", "other"]


def test_schedule_defined_in_two_files_names_both(write: Write, errors: Errors) -> None:
    """A schedule name defined in two files is an error naming both files and lines."""
    first = write(DIGEST, name="a.yaml")
    second = write(DIGEST, name="b.yaml", header=False)
    assert errors(first, second) == [
        f"{second}:2:3: CFG003 error: schedule 'digest' is defined twice: at {first}:12:3 and at "
        f"{second}:2:3; rename one of them or delete the duplicate"
    ]


def test_queue_defined_in_two_files_names_both(write: Write, errors: Errors) -> None:
    """A queue name defined in two files is an error naming both files and lines."""
    first = write("", name="a.yaml")
    second = write("queues:\n  plain: { name: other, backend: pgboss }\n", name="b.yaml", header=False)
    assert errors(first, second) == [
        f"{second}:2:3: CFG003 error: queue 'plain' is defined twice: at {first}:7:3 and at "
        f"{second}:2:3; rename one of them or delete the duplicate"
    ]


def test_duplicate_key_in_one_mapping_is_an_error(write: Write, errors: Errors) -> None:
    """A key written twice in one YAML mapping is an error, not a silent overwrite."""
    path = write(DIGEST + "    queue: insights\n")
    assert errors(path) == [
        f"{path}:16:5: CFG002 error: key 'queue' appears twice in the same mapping (first at line 15, "
        "column 5); YAML would silently keep only the last one; delete or rename one of them"
    ]


def test_tab_indentation_is_reported_with_its_line(write: Write, errors: Errors) -> None:
    """A tab used for indentation is a finding with its line, not a traceback."""
    path = write("schedules:\n\tdigest: {}\n")
    assert errors(path) == [
        f"{path}:12:1: CFG001 error: malformed YAML: while scanning for the next token: found character "
        "'\\t' that cannot start any token; "
        "indent with spaces: YAML does not allow tabs for indentation"
    ]


def test_unclosed_quote_is_reported_where_the_quote_opens(write: Write, errors: Errors) -> None:
    """An unclosed quote names the line where the quoted value starts and says to close it."""
    path = write('schedules:\n  digest:\n    cron: "0 * * * *\n')
    assert errors(path) == [
        f"{path}:14:1: CFG001 error: malformed YAML: while scanning a quoted scalar: found unexpected end "
        "of stream (the construct started at line 13, column 11); close the quote or bracket that is still open"
    ]


def test_bad_indentation_is_reported_with_its_line(write: Write, errors: Errors) -> None:
    """A key indented deeper than its siblings is a YAML error at that line."""
    path = write("schedules:\n  digest:\n    cron: '0 * * * *'\n      queue: plain\n")
    assert errors(path) == [
        f"{path}:14:7: CFG001 error: malformed YAML: while parsing a block mapping: expected <block end>, "
        "but found '<block mapping start>' (the construct started at line 13, column 5); indent this line "
        "like the other keys of its mapping (they start in the same column), or quote a value that contains ': '"
    ]


def test_version_other_than_one_is_an_error(write: Write, errors: Errors) -> None:
    """`version: 2` is rejected with the supported version."""
    path = write("version: 2\n", header=False)
    assert errors(path) == [
        f"{path}:1:10: CFG005 error: version: 2 is not supported; this scheduler reads version 1; "
        "write `version: 1`"
    ]


def test_missing_file_is_an_error(tmp_path: Path, errors: Errors) -> None:
    """A path that does not exist is a finding naming it."""
    missing = tmp_path / "nope.yaml"
    assert errors(missing) == [
        f"CFG011 error: {str(missing)!r} does not exist; pass a YAML file or a directory of them"
    ]


def test_directory_without_yaml_is_an_error(tmp_path: Path, errors: Errors) -> None:
    """A directory with no *.yaml files is a finding, not an empty config."""
    assert errors(tmp_path) == [
        f"CFG011 error: directory {str(tmp_path)!r} has no *.yaml or *.yml files; "
        "put the schedule files there or pass a file"
    ]


def test_a_file_that_is_not_a_mapping_is_an_error(write: Write, errors: Errors) -> None:
    """A file whose top level is a list is rejected with the expected shape."""
    path = write("- a\n- b\n", header=False)
    assert errors(path) == [
        f"{path}:1:1: CFG005 error: the file must be a mapping with keys such as version, queues and "
        "schedules, got a list"
    ]


def test_merge_keys_share_settings(load: Load) -> None:
    """YAML anchors and `<<` merge keys fill the keys a mapping does not set itself."""
    loaded = load(
        "schedules:\n"
        "  digest: &digest\n    cron: '0 * * * *'\n    cohort: { sql: select 1 }\n    queue: plain\n"
        "  second:\n    <<: *digest\n    cron: '30 * * * *'\n"
    )
    second = loaded.config.schedules["second"]
    assert (second.cron, second.queue) == ("30 * * * *", "plain")


def test_config_invalid_lists_every_finding(write: Write) -> None:
    """str(ConfigInvalid) counts the errors and lists each on its own line."""
    path = write("schedules:\n  digest:\n    cron: '0 * * *'\n    cohort: { sql: x }\n    queue: nope\n")
    with pytest.raises(ConfigInvalid) as caught:
        load_config([path])
    assert str(caught.value).splitlines()[0] == "the schedule files have 2 errors:"
    assert [line.split(": ")[1] for line in str(caught.value).splitlines()[1:]] == [
        "CFG005 error",
        "CFG007 error",
    ]


def _shape(node: object) -> list[tuple[str, str, int, int, object]]:
    """Every node of a tree, in order: kind, tag, line, column, and a scalar's text."""
    out: list[tuple[str, str, int, int, object]] = []
    stack = [node]
    while stack:
        one = stack.pop()
        assert isinstance(one, yaml.Node)
        value = one.value if isinstance(one, yaml.ScalarNode) else None
        out.append((type(one).__name__, one.tag, one.start_mark.line, one.start_mark.column, value))
        if isinstance(one, yaml.SequenceNode):
            stack.extend(reversed(one.value))
        elif isinstance(one, yaml.MappingNode):
            stack.extend(child for pair in reversed(one.value) for child in reversed(pair))
    return out


def test_libyaml_and_pyyaml_compose_the_same_tree(tmp_path: Path) -> None:
    """The fast path (libyaml's parser) gives the nodes, tags and positions PyYAML's own parser gives."""
    assert loader_module._FastLoader is not None
    schedules = Path(__file__).parents[3] / "schedules"
    texts = [p.read_text() for p in sorted(schedules.glob("*.yaml"))]
    texts.append("a: &x { b: 'é日本', c: [1, 2.5, ~, 2024-01-01] }\nd:\n  <<: *x\n  e: \"\\t\"\n")
    for text in texts:
        fast = loader_module._FastLoader(text, tmp_path)
        slow = loader_module._Loader(text, tmp_path)
        assert _shape(fast.get_single_node()) == _shape(slow.get_single_node())
