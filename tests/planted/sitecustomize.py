"""Plants an error nobody foresaw, for the tests of the entry points' net (tests/harness/test_entry_points.py) and the
fault-case table (tools/fault_cases.py): with this folder on PYTHONPATH and SALSA_PLANT_FAULT=module:attribute (or
module:Class.attribute) in the environment, that function raises ZeroDivisionError once its module is imported, in
this process and in every child that inherits the environment."""
import importlib.abc
import importlib.util
import os
import sys

TARGET = os.environ.get("SALSA_PLANT_FAULT", "")


def planted(*args, **kwargs):
    raise ZeroDivisionError(f"planted in {TARGET} by tests/planted/sitecustomize.py")


def plant(module) -> None:
    owner, _, name = TARGET.partition(":")[2].rpartition(".")
    setattr(getattr(module, owner) if owner else module, name, planted)


class Planter(importlib.abc.MetaPathFinder):
    """Patches the module right after it has run (a later `from module import attribute` gets the plant)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET.partition(":")[0]:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            plant(module)
        spec.loader.exec_module = exec_module
        return spec


if TARGET:
    if TARGET.partition(":")[0] in sys.modules:
        plant(sys.modules[TARGET.partition(":")[0]])
    else:
        sys.meta_path.insert(0, Planter())
