"""Every public function, class and method of odl_learned has a doctest example.

"Public" means: a function or class named in its module's ``__all__`` and
defined in that module (not re-exported), and every method defined in such a
class's own body whose name does not start with ``_``. ``forward``,
``torch_call`` and ``extra_repr`` implement torch/ODL hooks that are documented
(and exercised) through their class, so they are exempt. Properties are
attributes, not methods, and are not checked.

The examples themselves run as doctests (``--doctest-modules`` in setup.cfg);
this test only makes sure that there is one to run.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import odl_learned

#: methods that implement a framework hook and are documented through their class
EXEMPT_METHODS = frozenset({"forward", "torch_call", "extra_repr"})


def _modules():
    def onerror(name: str) -> None:
        raise ImportError(f"cannot import {name} while walking odl_learned")

    yield odl_learned
    for info in pkgutil.walk_packages(odl_learned.__path__, "odl_learned.", onerror=onerror):
        yield importlib.import_module(info.name)


def _has_example(obj) -> bool:
    # the object's own docstring: an example of a base class does not count
    return ">>>" in (obj.__doc__ or "")


def _public_methods(cls):
    for name, member in vars(cls).items():
        if name.startswith("_") or name in EXEMPT_METHODS:
            continue
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if inspect.isfunction(member):
            yield name, member


def _offenders() -> list[str]:
    offenders = []
    for module in _modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if obj.__module__ != module.__name__:
                continue  # re-exported: checked where it is defined
            qualname = f"{module.__name__}.{name}"
            if not _has_example(obj):
                offenders.append(qualname)
            if inspect.isclass(obj):
                offenders.extend(f"{qualname}.{method}" for method, func in _public_methods(obj)
                                 if not _has_example(func))
    return offenders


def test_public_api_has_doctest_examples():
    offenders = _offenders()
    assert not offenders, (
        f"{len(offenders)} public function(s), class(es) or method(s) without an 'Examples' "
        "section with a '>>>' doctest:\n  " + "\n  ".join(offenders)
    )


def test_checker_finds_missing_examples():
    # the walk reaches subpackages and sees methods, static and class methods
    class Documented:
        """A class.

        >>> Documented.plain is not None
        True
        """

        def plain(self):
            """No example."""

        @staticmethod
        def static():
            """No example."""

        @classmethod
        def klass(cls):
            """>>> 1
            1
            """

        def forward(self):
            """Exempt."""

        def _private(self):
            pass

    assert sorted(name for name, func in _public_methods(Documented) if not _has_example(func)) == [
        "plain", "static"]
    names = {module.__name__ for module in _modules()}
    assert {"odl_learned.training.trainer", "odl_learned.bridge.torch_operator"} <= names
