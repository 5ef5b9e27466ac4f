"""Port pyarrow 11's own ``pyarrow/tests/test_plasma.py`` to tensor_ipc.plasma.

    python port_test_plasma.py SOURCE DEST

SOURCE is the file inside the pyarrow 11.0.0 wheel; DEST the ported copy
(made at test time, never committed). The port changes only how the module is
imported and named:

* ``import pyarrow.plasma as plasma``  ->  ``import tensor_ipc.plasma as plasma``
* ``from pyarrow import plasma``       ->  ``from tensor_ipc import plasma``
* ``pa.plasma.X``                      ->  ``tensor_ipc.plasma.X`` (with
  ``import tensor_ipc.plasma`` added after ``import pyarrow as pa``)

and drops only the tests that need ``pa.serialize`` / ``pa.deserialize`` /
``SerializationContext``, which pyarrow itself removed (listed in DROPPED).
Anything else in the file is kept byte for byte; the script fails if the file
does not look as expected, so a changed source cannot be ported silently.
"""

import ast
import sys

DROPPED = ("test_put_and_get_raw_buffer", "test_put_and_get_serialization_context")

REWRITES = (
    ("import pyarrow.plasma as plasma", "import tensor_ipc.plasma as plasma"),
    ("from pyarrow import plasma", "from tensor_ipc import plasma"),
    ("pa.plasma.", "tensor_ipc.plasma."),
)


def drop_functions(source, names):
    """``source`` without the functions (and their decorators) called ``names``."""
    tree = ast.parse(source)
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in names:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            spans.append((first, node.end_lineno, node.name))
    found = sorted(name for _, _, name in spans)
    if found != sorted(names):
        raise SystemExit("expected to drop %s, found %s" % (sorted(names), found))
    lines = source.splitlines(keepends=True)
    for first, last, _ in sorted(spans, reverse=True):
        # Also drop the blank line that separated the function from the next one.
        end = last
        if end < len(lines) and not lines[end].strip():
            end += 1
        del lines[first - 1:end]
    return "".join(lines)


def port(source):
    source = drop_functions(source, DROPPED)
    for old, new in REWRITES:
        if old not in source:
            raise SystemExit("the source has no %r" % old)
        source = source.replace(old, new)
    anchor = "import pyarrow as pa\n"
    if source.count(anchor) != 1:
        raise SystemExit("expected one %r" % anchor)
    source = source.replace(anchor, anchor + "import tensor_ipc.plasma\n")
    for leftover in ("pyarrow.plasma", "pa.plasma", "pa.serialize", "pa.deserialize",
                     "SerializationContext", "serialization_context"):
        if leftover in source:
            raise SystemExit("%r is still in the ported file" % leftover)
    return source


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1]) as f:
        ported = port(f.read())
    with open(sys.argv[2], "w") as f:
        f.write(ported)


if __name__ == "__main__":
    main()
