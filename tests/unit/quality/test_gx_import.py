"""Great Expectations is imported without the optional modules it would load for nothing
(rfc3987_syntax's grammars, SQLAlchemy for SQL data sources nothing here uses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src"


def test_import_gx_skips_the_iri_grammars_and_gx_still_validates() -> None:
    """In a fresh process (a phase kernel), ``import_gx`` leaves ``rfc3987_syntax`` unloaded (its
    39 Lark grammars compile at import) and SQLAlchemy too, even after a validation; jsonschema
    still validates, and so does Great Expectations."""
    code = (
        "import sys, pandas as pd\n"
        "from churn.quality.runner import import_gx, validate_frames\n"
        "gx = import_gx()\n"
        "assert sys.modules.get('rfc3987_syntax') is None, 'rfc3987_syntax was imported'\n"
        "import jsonschema\n"
        "jsonschema.validate({'a': 1}, {'type': 'object', 'properties': {'a': {'type': 'integer'}}})\n"
        "import great_expectations.expectations as gxe\n"
        "frame = pd.DataFrame({'x': [1, 2, None]})\n"
        "report = validate_frames({'t': frame}, {'t': [gxe.ExpectColumnValuesToNotBeNull(column='x')]})\n"
        "assert not report.success and report.results[0].unexpected_count == 1\n"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy was imported'\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
