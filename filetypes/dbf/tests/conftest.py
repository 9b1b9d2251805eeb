import os
from pathlib import Path

import pytest

# shared/ sits beside the repository root: <repo>/filetypes/dbf/tests/conftest.py -> parents[3] is <repo>.
REALDATA = Path(__file__).resolve().parents[3].parent / "shared" / "realdata"
REAL_FILES = ("show2003.dbf", "sjshq.dbf")


def real_path(name: str) -> Path:
    path = REALDATA / name
    if not path.is_file():
        message = f"real DBF file {path} is missing"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def realdata():
    """``realdata(name)``: the path of a real exchange file (skips, or fails under CI=true, when missing)."""
    return real_path


@pytest.fixture(params=REAL_FILES)
def real_file(request) -> Path:
    return real_path(request.param)
