import os
import re
import shutil
from pathlib import Path

import pytest

from hzlib.browser import browser_missing
from hzlib.config import load_profile
from hzlib.reproduce import reproduce

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def one_torch_thread():
    # Two OpenMP threads on a shared 2-core machine can be 10x slower than one.
    import torch  # here, not at the top: every test session loads this file, most tests need no torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def geometry():
    """The small geometry the pair-model tests check a model at (tests/pairmodel_checks.py); a test file
    that checks its model at another geometry defines its own ``geometry``."""
    import pairmodel_checks  # torch: only for the tests that ask for it

    return pairmodel_checks.small_geometry()


def project_copy(dst: Path) -> Path:
    """The book's sources (notebooks, profiles, pages, config) in ``dst``, without generated pages."""
    for name in ("notebooks", "profiles", "book", "_static"):  # _static: the book's CSS (jupyter-book adds it)
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("chapters", "generated", "_build"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, dst / name)
    return dst


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """Every chapter run on the smoke profile and the book built, once per session (minutes): the
    build test and the browser test share it. Yields ``(root, summary)``; the HTML is in
    ``root/_build/html``."""
    root = project_copy(tmp_path_factory.mktemp("smoke_book"))
    return root, reproduce(load_profile("smoke"), root)


@pytest.fixture(scope="session")
def headless_chromium():
    """Skips a browser test where Chromium, chromedriver or selenium is missing, but fails it in CI
    (``CI=true``): CI installs them (scripts/setup.sh), so a skip there would hide a broken set-up."""
    why = browser_missing()
    if why and os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but the browser test cannot run: {why}")
    if why:
        pytest.skip(why)


MAGICS = re.compile(r"%load_ext hzlib\.report|%%skip_if [A-Za-z_]\w*")  # the only IPython syntax a notebook may use


def cell_python(cell) -> str:
    """A code cell's source as Python: its magics (only :data:`MAGICS`) become comments, line numbers kept."""
    lines = "".join(cell["source"]).splitlines()
    magics = [line for line in lines if line.startswith("%")]
    assert all(MAGICS.fullmatch(m) for m in magics), f"unexpected magic in {magics}"
    return "\n".join("# " + line if line.startswith("%") else line for line in lines)
