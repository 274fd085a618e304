"""requirements.lock → environment.yml, so conda users install exactly what `make test` passed.

`make lock` writes requirements.lock with uv (every package pinned with its hashes) and then
runs this script; tests/test_packaging.py checks that the two files still agree.

    python tools/lockfile.py            # rewrite environment.yml from requirements.lock
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
ENVIRONMENT = ROOT / "environment.yml"
PYTHON = "3.11"
"""The interpreter the lock was resolved for (pyproject's [tool.uv] environments)."""

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)\s*(?P<rest>.*)$")


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: str | None
    """The environment marker, e.g. ``sys_platform == 'darwin'``, or None for every platform."""

    def requirement(self) -> str:
        text = f"{self.name}=={self.version}"
        return f"{text} ; {self.marker}" if self.marker else text


def read_lock(path: Path = LOCK) -> list[Pin]:
    """Every pinned package of a uv/pip-tools lock file, in file order."""
    pins: list[Pin] = []
    for line in path.read_text().splitlines():
        match = _PIN.match(line)
        if match is None:
            continue  # hashes, comments and `# via` annotations
        rest = match["rest"].rstrip("\\").strip()
        marker = rest.removeprefix(";").strip() if rest.startswith(";") else None
        pins.append(Pin(match["name"], match["version"], _drop_python_clause(marker)))
    return pins


def _drop_python_clause(marker: str | None) -> str | None:
    """Markers that only restate the lock's Python 3.11 range are noise in a file that pins
    python=3.11 itself; any other condition (a platform, a patch release) is kept."""
    if marker is None:
        return None
    restated = "python_full_version < '3.12'"
    if marker == restated:
        return None
    return marker.removeprefix(f"{restated} and ").replace(f" and {restated}", "")


def environment_yml(pins: list[Pin]) -> str:
    lines = [
        "# For conda users: `conda env create -f environment.yml`. Generated from",
        "# requirements.lock by `make lock` (tools/lockfile.py): the same pins `make test`",
        "# passed with. Do not edit; tests/test_packaging.py checks the two agree.",
        "name: workbench",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={PYTHON}",
        "  - pip",
        "  - pip:",
        *(f'      - "{pin.requirement()}"' for pin in pins),
        '      - "-e ."',
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ENVIRONMENT.write_text(environment_yml(read_lock()))
    print(f"wrote {ENVIRONMENT.relative_to(ROOT)} from {LOCK.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
