"""pyarrow 11's own test_plasma.py, ported by changing only its import, passes
on current numpy and pyarrow against the store this package starts: every
test that passes with pyarrow 11 against its own store passes here (all but
the two dropped ones, which need ``pa.serialize``)."""

import os
import re
import subprocess
import sys

import pytest

from conftest import TARGET, missing, run_python
from port_test_plasma import DROPPED, port

pytestmark = pytest.mark.needs_pyarrow

BASELINE_SCRIPT = r"""
import subprocess, sys
out = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "pyarrow.tests.test_plasma",
                      "-rA", "-q", "-p", "no:cacheprovider"], capture_output=True, text=True)
print(out.stdout)
"""


def passed(output):
    """The tests reported PASSED (``Class::test`` or ``test``), and the summary line."""
    names = set()
    for line in output.splitlines():
        # `PASSED path.py::Class::test`, or `PASSED ::Class::test` under --pyargs.
        m = re.match(r"PASSED (?:\S*?\.py)?::(\S+)", line)
        if m:
            names.add(m.group(1))
    summary = [l for l in output.splitlines() if re.search(r"\d+ passed", l)]
    return names, summary[-1] if summary else ""


def source_of(python11):
    out = run_python("import os, pyarrow; print(os.path.dirname(pyarrow.__file__))",
                     python=python11)
    assert out.returncode == 0, out.stderr
    path = os.path.join(out.stdout.strip(), "tests", "test_plasma.py")
    if not os.path.exists(path):
        missing("pyarrow 11's tests/test_plasma.py (%s)" % path)
    return path


def baseline(python11):
    """What passes with pyarrow 11 against its own plasma-store-server: from
    ``.ci/plasma-pyarrow11.sh``'s record when it is there, else run now."""
    record = os.path.join(TARGET, "plasma-pyarrow11", "original.passed")
    if os.path.exists(record):
        with open(record) as f:
            return {re.sub(r"^\S+?\.py::", "", l.strip()) for l in f if l.strip()}
    out = run_python(BASELINE_SCRIPT, python=python11, timeout=600,
                     env={"PYTHONWARNINGS": "ignore"})
    names, summary = passed(out.stdout)
    assert names, out.stdout + out.stderr
    return names


def test_pyarrow11_test_plasma_ported(python11, tmp_path):
    import numpy
    import pyarrow

    ported = tmp_path / "test_plasma_ported.py"
    with open(source_of(python11)) as f:
        ported.write_text(port(f.read()))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", str(ported), "-rA", "-q", "-p", "no:cacheprovider",
         "-W", "ignore::pytest.PytestUnknownMarkWarning"],
        capture_output=True, text=True, timeout=900, cwd=str(tmp_path))
    ours, summary = passed(out.stdout)
    print("ported test_plasma.py on numpy %s, pyarrow %s: %s"
          % (numpy.__version__, pyarrow.__version__, summary))
    expected = baseline(python11)
    dropped = {n for n in expected if n.split("::")[-1] in DROPPED}
    assert dropped == {"TestPlasmaClient::" + n for n in DROPPED}
    missing_tests = sorted(expected - dropped - ours)
    assert not missing_tests, "pass with pyarrow 11 but not here: %s\n%s" % (
        missing_tests, out.stdout[-5000:])
    assert len(ours) == len(expected) - len(DROPPED), summary
    assert " failed" not in summary and "error" not in summary, out.stdout[-5000:]
