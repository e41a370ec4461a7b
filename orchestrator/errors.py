"""The error every layer of the orchestrator raises for a search-space file that cannot run:
defined here, below the spec, the YAML reader and the expansion, so that none of them imports
another in a circle to raise it."""

from __future__ import annotations


class SpecError(ValueError):
    """A search-space file that cannot run. ``str()`` is ``FILE: KEY.PATH: reason``."""

    def __init__(self, file: str, path: str, reason: str):
        self.file, self.path, self.reason = file, path, reason
        where = f"{file}: {path}" if path else file
        # always one line, whatever a key or value holds
        super().__init__(f"{where}: {reason}".replace("\r", "\\r").replace("\n", "\\n"))
