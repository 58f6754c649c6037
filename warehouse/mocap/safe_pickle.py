"""Load a pickle that should hold only numpy arrays and plain Python values (a dataset's parameter
file): any other class it asks for is refused, so a crafted file cannot run code."""

from __future__ import annotations

import pickle
from pathlib import Path

_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("_codecs", "encode")}  # how pickle protocol 2 writes bytes from Python 3 (harmless: str -> bytes)


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module.replace("numpy.core", "numpy._core"), name)


def load_arrays(path: Path):
    """The object pickled in ``path`` (Python 2 pickles too: ``str`` read as latin-1). Raises OSError
    when the file cannot be read and ValueError (naming nothing: the caller adds the file) when it is
    not such a pickle."""
    with open(path, "rb") as f:
        try:
            return _ArraysOnly(f, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError,
                KeyError) as exc:
            raise ValueError(str(exc) or type(exc).__name__) from None
