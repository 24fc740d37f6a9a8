"""NWEA MAP Growth exports. How their files map to students, terms and metrics is the import
profile shipped as ciboard/profile_files/nwea-map.toml; `ciboard import nwea-map` loads
them through it as any profile's files load (ciboard.exports)."""

from collections.abc import Callable
from pathlib import Path

from ciboard import exports
from ciboard.profiles import shipped

NAME = "nwea-map"
NWEA_MAP = shipped()[NAME]


def import_files(warehouse, paths: list[Path], *, progress: Callable[[str], None] | None = None, replace: bool = False):
    """Loads AssessmentResults and StudentsBySchool files, any terms, as one ingest."""
    return exports.import_files(warehouse, NAME, paths, progress=progress, replace=replace)
