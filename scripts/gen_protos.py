"""Generate Python code and typed stubs from protos/, or check that they are fresh.

    python scripts/gen_protos.py          # regenerate into protos/
    python scripts/gen_protos.py --check  # exit 1 when the committed code is stale

protoc writes absolute imports rooted at the proto root (``from sharing.v1 import ...``);
the generated files live in the ``protos`` package, so those imports are rewritten to
``from protos.sharing.v1 import ...``. Protobuf type names are unaffected.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGES = ("sharing", "agency")
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
_IMPORT = re.compile(rf"^from ({'|'.join(PACKAGES)})\.v(\d+) import ", re.MULTILINE)


def generate(out_dir: Path) -> None:
    """Run protoc with the Python, gRPC and mypy plugins into ``out_dir``."""
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.glob("*/v*/*.proto"))
    env = dict(os.environ)
    # The mypy-protobuf plugins are console scripts of this environment.
    env["PATH"] = sysconfig.get_path("scripts") + os.pathsep + env.get("PATH", "")
    result = subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            f"--mypy_out={out_dir}",
            f"--mypy_grpc_out={out_dir}",
            *sources,
        ],
        cwd=PROTO_ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        sys.exit(f"protoc failed:\n{result.stderr}")
    for path in out_dir.rglob("*"):
        if path.suffix in (".py", ".pyi"):
            path.write_text(_IMPORT.sub(r"from protos.\1.v\2 import ", path.read_text()))
    for package_dir in {p.parent for p in out_dir.rglob("*_pb2.py")}:
        (package_dir / "__init__.py").write_text("")
        (package_dir.parent / "__init__.py").write_text("")


def generated_files(root: Path) -> set[Path]:
    """The generated files under ``root``, relative to it."""
    found = set()
    for package in PACKAGES:
        for path in (root / package).rglob("*"):
            if path.name.endswith(GENERATED_SUFFIXES) or path.name == "__init__.py":
                found.add(path.relative_to(root))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root)
        fresh = generated_files(fresh_root)
        committed = generated_files(PROTO_ROOT)
        if args.check:
            stale = sorted(
                str(p)
                for p in fresh | committed
                if p not in fresh
                or p not in committed
                or not filecmp.cmp(fresh_root / p, PROTO_ROOT / p, shallow=False)
            )
            if stale:
                print("generated proto code is stale; run: make protos", file=sys.stderr)
                for name in stale:
                    print(f"  {name}", file=sys.stderr)
                return 1
            print(f"generated proto code is fresh ({len(fresh)} files)")
            return 0
        for path in committed - fresh:
            (PROTO_ROOT / path).unlink()
        for path in fresh:
            target = PROTO_ROOT / path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fresh_root / path, target)
        print(f"generated {len(fresh)} files under {PROTO_ROOT.relative_to(ROOT)}/")
        return 0


if __name__ == "__main__":
    sys.exit(main())
