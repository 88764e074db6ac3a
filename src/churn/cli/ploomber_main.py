"""``python -m churn.cli.ploomber_main ARGS``: ``ploomber ARGS`` without the optional imports of
:mod:`churn.lean` (what ``churn build``, ``churn cycle`` and ``make`` run)."""

from __future__ import annotations

from churn.lean import ploomber_cli


def main() -> None:
    ploomber_cli()()


if __name__ == "__main__":
    main()
