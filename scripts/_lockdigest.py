"""Print the digest of pyproject.toml's dependency declarations (scripts/lock, scripts/_setup.sh).

requirements*.txt carry this digest in their header; a different digest means someone changed a
dependency in pyproject.toml without re-locking. Only the dependency tables count, so editing
ruff or mypy settings does not invalidate the lock.
"""

import hashlib
import json
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
project = data.get("project", {})
declared = {
    "build-system.requires": data.get("build-system", {}).get("requires", []),
    "requires-python": project.get("requires-python"),
    "dependencies": project.get("dependencies", []),
    "optional-dependencies": project.get("optional-dependencies", {}),
}
print(hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest())
