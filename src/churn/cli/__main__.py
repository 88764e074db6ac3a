"""``python -m churn.cli`` = ``churn``."""

from churn.cli import main

main(prog_name="churn")
