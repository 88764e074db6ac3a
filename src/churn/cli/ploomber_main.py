"""``python -m churn.cli.ploomber_main ARGS``: ``ploomber ARGS`` without the optional imports of
:mod:`churn.lean` (what ``churn build``, ``churn cycle`` and ``make`` run)."""

from __future__ import annotations

from churn.lean import skip_unused_optional


def main() -> None:
    skip_unused_optional()
    from ploomber_cli.cli import cmd_router

    cmd_router()


if __name__ == "__main__":
    main()
