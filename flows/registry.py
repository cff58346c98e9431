"""The model registry from the command line: list versions, roll the champion back.

    python -m flows.registry --registry DIR_OR_URI --name NAME list
    python -m flows.registry --registry DIR_OR_URI --name NAME rollback VERSION
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from tasks.errors import AutoMLInputError, OneLineParser
from tasks.registry import Registry

__all__ = ["main"]


def _list(registry: Registry) -> None:
    champion = registry.champion()
    for version in registry.versions():
        with registry.fs.open(f"{registry.version_path(version)}/metrics.json", "r") as handle:
            metrics = json.load(handle)
        mark = "*" if version == champion else " "
        print(f"{mark} v{version}  {metrics['metric']}={metrics['value']:.6g}  "
              f"{metrics['best']['family']}")
    if champion is None:
        print("no champion yet")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; exit 2 with one ``error:`` line on bad input."""
    parser = OneLineParser(prog="python -m flows.registry", description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="registry folder or fsspec URI")
    parser.add_argument("--name", required=True, help="model name in the registry")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="versions, champion marked with *")
    rollback = commands.add_parser("rollback", help="make an earlier version the champion")
    rollback.add_argument("version", help="version number (2 or v2)")
    args = parser.parse_args(argv)
    try:
        registry = Registry(args.registry, args.name)
        registry.check_exists()
        if args.command == "list":
            _list(registry)
        else:
            version = registry.number(args.version)
            registry.roll_back(version)
            print(f"champion of {args.name}: v{version}")
    except AutoMLInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
