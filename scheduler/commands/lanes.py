"""`scheduler lanes`: every lane's source → queue mapping, in one place, for review."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scheduler.cli import EXIT_FINDINGS, EXIT_OK, HelpFormatter
from scheduler.commands.common import add_paths, dump_json, load_or_print
from scheduler.config.validate import resolve_queue
from scheduler.errors import ConfigError

if TYPE_CHECKING:
    import argparse

    from scheduler.config.models import Config

HELP = "print each lane's source → queue mapping (real name, backend), with its default"
DESCRIPTION = """\
Prints, for every lane, each routed source and the queue it goes to (logical name, real name, backend),
then the default queue that takes every other source (and rows without one). Schedules and watchers
that name the lane are listed, so the mapping can be reviewed in one place.
"""
EPILOG = """\
examples:
  scheduler lanes schedules/
  scheduler lanes --json schedules/ | jq '."chat-assistant".routes'
"""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "lanes", help=HELP, description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    p.add_argument("--json", action="store_true", help="print the mapping as JSON")
    add_paths(p)
    p.set_defaults(handler=run)


def lanes_doc(config: Config) -> dict[str, Any]:
    """Lane → {routes: source → queue, default: queue, used_by: [...]}; a queue is {queue, name, backend}."""

    def queue(logical: str) -> dict[str, str]:
        ref = resolve_queue(config, logical)
        return {"queue": logical, "name": ref.name, "backend": ref.backend.value}

    return {
        name: {
            "routes": {source: queue(target) for source, target in sorted(lane.routes.items())},
            "default": queue(lane.default),
            "used_by": sorted(
                [f"schedule {s}" for s, v in config.schedules.items() if v.lane == name]
                + [f"watcher {w}" for w, v in config.watchers.items() if v.lane == name]
            ),
        }
        for name, lane in sorted(config.lanes.items())
    }


def run(args: argparse.Namespace) -> int:
    loaded = load_or_print(args)
    if loaded is None:
        return EXIT_FINDINGS
    try:
        doc = lanes_doc(loaded.config)
    except ConfigError as exc:
        print(f"error: {exc}")
        return EXIT_FINDINGS
    if args.json:
        dump_json(doc)
        return EXIT_OK
    if not doc:
        print("no lanes declared")
    for name, lane in doc.items():
        print(f"lane {name}:")
        width = max([len(s) for s in lane["routes"]] + [len("(default)")])
        for source, q in lane["routes"].items():
            print(f"  {source:<{width}} -> {q['queue']} ({q['name']}, {q['backend']})")
        d = lane["default"]
        print(f"  {'(default)':<{width}} -> {d['queue']} ({d['name']}, {d['backend']})")
        if lane["used_by"]:
            print(f"  used by: {', '.join(lane['used_by'])}")
    return EXIT_OK
