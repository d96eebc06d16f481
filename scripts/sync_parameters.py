"""Rewrite the `parameters` cell of every notebook from profiles/default.yml (run after adding a
profile key; tests/test_notebooks.py checks that the cells and the default profile agree)."""
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
HEADER = "# Parameters (papermill injects a profile's values after this cell; see profiles/*.yml)"


def parameters_source(default: dict) -> str:
    return "\n".join([HEADER] + [f"{k} = {v!r}" for k, v in default.items()])


def main() -> None:
    default = yaml.safe_load((ROOT / "profiles" / "default.yml").read_text(encoding="utf-8"))
    src = parameters_source(default)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        if len(cells) != 1:
            raise SystemExit(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
        if cells[0].source != src:
            cells[0].source = src
            nbformat.write(nb, path)
            print(f"updated {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
