"""Start-up cost: optional modules our processes would import for nothing.

``nbformat`` (so Ploomber, Papermill and nbconvert) and Great Expectations (through Altair)
import ``jsonschema``, and jsonschema, when ``rfc3987_syntax`` is installed (jupyter-events'
``format-nongpl`` extra brings it), compiles that package's 39 Lark grammars at import, to check
the ``iri`` string format: 2-5 s in every pipeline run's Ploomber process and in each Great
Expectations phase kernel, for a format nothing here validates.
"""

from __future__ import annotations

import sys

OPTIONAL_SKIPPED = ("rfc3987_syntax",)


def skip_unused_optional() -> None:
    """Mark :data:`OPTIONAL_SKIPPED` as absent (``sys.modules[name] = None``), so jsonschema's
    ``try: import`` skips that optional checker as it does where the package is not installed.
    Only before anything in the process has imported jsonschema (else it is too late and the
    module, if loaded, stays)."""
    if "jsonschema" in sys.modules:
        return
    for name in OPTIONAL_SKIPPED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
