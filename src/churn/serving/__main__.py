"""``python -m churn.serving``: the API on CHURN_HOST:CHURN_PORT with CHURN_WORKERS workers, with
the connection bound, header deadline and proxy-header policy of ``churn.serving.server``."""

from __future__ import annotations

import argparse

from churn.serving.server import APP, serve
from churn.serving.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m churn.serving", description=__doc__, allow_abbrev=False)
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--app", default=APP, help=argparse.SUPPRESS)  # benchmarks: the ceiling apps
    args = parser.parse_args(argv)
    serve(Settings(), log_level=args.log_level, access_log=not args.no_access_log, app=args.app)


if __name__ == "__main__":
    main()
