# Stand-in: PyPI torchvision does not import beside the CPU torch wheel here; deepinv's
# Tomography does not use it. Every torchvision.* import yields a permissive empty module.
import importlib.abc, importlib.machinery, sys, types


class _Any(types.ModuleType):
    __path__ = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Any(f"{self.__name__}.{name}")

    def __call__(self, *a, **k):
        return _Any("call")

    def __iter__(self):
        return iter(())

    def __mro_entries__(self, bases):
        return (object,)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        return _Any(spec.name)

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Finder())
__path__ = []


def __getattr__(name):
    return _Any(f"torchvision.{name}")
