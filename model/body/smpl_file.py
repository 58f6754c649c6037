"""The licensed SMPL model file: rewrite the official chumpy pickle as plain numpy, and read it back.

The official SMPL ``.pkl`` files (``basicModel_*_lbs_10_207_0_v1.0.0.pkl``, ``SMPL_NEUTRAL.pkl``,
HMMR's ``neutral_smpl_with_cocoplustoesankles_reg.pkl``) were written by Python 2 with chumpy ``Ch``
objects in them (``shapedirs``, sometimes ``posedirs``/``weights``) and a scipy sparse ``J_regressor``.
chumpy does not install on Python 3.11, so :func:`convert_smpl` unpickles the file with chumpy's
classes mapped to a stand-in that keeps the array of a ``Ch`` leaf, and writes every array as plain
numpy into an ``.npz`` that ``smplx.SMPL(data_struct=Struct(**np.load(path)))`` accepts.
The SMPL files are licensed per user (https://smpl.is.tue.mpg.de): hmmr never ships or downloads one.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import scipy.sparse

#: Arrays smplx.SMPL reads from its data struct, with their shapes (V vertices, J = 24 joints).
REQUIRED_KEYS = ("v_template", "f", "J_regressor", "weights", "posedirs", "shapedirs", "kintree_table")


class SmplFileError(ValueError):
    """The file is not an SMPL model hmmr can read."""


class _ChumpyLeaf:
    """Stand-in for any chumpy class met while unpickling: keeps the pickled state.

    A chumpy ``Ch`` leaf pickles its value as the state entry ``x``; that is all SMPL files hold.
    """

    def __init__(self, *args, **kwargs) -> None:
        self.state: dict = {}

    def __setstate__(self, state) -> None:
        self.state = state if isinstance(state, dict) else {"x": state}

    def to_array(self, key: str) -> np.ndarray:
        if "x" not in self.state:
            raise SmplFileError(f"{key!r} is a chumpy expression, not a stored array; it needs chumpy to evaluate")
        return np.asarray(self.state["x"])


class _ChumpyFreeUnpickler(pickle.Unpickler):
    """Unpickler that maps ``chumpy.*`` classes to :class:`_ChumpyLeaf` (Python 2 pickles: latin1)."""

    def find_class(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyLeaf
        if module in ("scipy.sparse.csc", "scipy.sparse.csr"):  # pre-1.8 scipy module paths
            return getattr(scipy.sparse, name)
        return super().find_class(module, name)


def _plain(key: str, value):
    if isinstance(value, _ChumpyLeaf):
        return value.to_array(key)
    if scipy.sparse.issparse(value):
        return np.asarray(value.todense())
    return np.asarray(value)


def read_smpl_pickle(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an official SMPL pickle, without chumpy.

    Returns: ``v_template (V, 3)`` metres, ``f (F, 3)`` int, ``J_regressor (24, V)`` dense,
    ``weights (V, 24)``, ``posedirs (V, 3, 207)``, ``shapedirs (V, 3, B)``, ``kintree_table (2, 24)``,
    and whatever else the file holds (``J (24, 3)``, ``bs_style``, ``bs_type``, HMMR's
    ``cocoplus_regressor (K, V)``), each as a plain numpy array.
    """
    with open(path, "rb") as fh:
        try:
            raw = _ChumpyFreeUnpickler(fh, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ModuleNotFoundError) as exc:
            raise SmplFileError(f"{path} is not a readable SMPL pickle: {exc}") from exc
    if not isinstance(raw, dict) or (missing := [k for k in REQUIRED_KEYS if k not in raw]):
        raise SmplFileError(f"{path} is not an SMPL model file (missing {missing if isinstance(raw, dict) else 'everything'})")
    arrays = {key: _plain(key, value) for key, value in raw.items()}
    if "cocoplus_regressor" in arrays and arrays["cocoplus_regressor"].shape[0] == arrays["v_template"].shape[0]:
        arrays["cocoplus_regressor"] = arrays["cocoplus_regressor"].T  # stored (V, K) in HMR/HMMR's files
    return arrays


def convert_smpl(src: Path, dst: Path) -> dict[str, tuple[int, ...]]:
    """Rewrite the official SMPL pickle ``src`` as a chumpy-free ``.npz`` at ``dst``.

    Returns the shape of every array written. The result loads with
    ``smplx.SMPL(data_struct=smplx.utils.Struct(**np.load(dst)))`` and :func:`load_smpl_npz`.
    """
    arrays = read_smpl_pickle(Path(src))
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "wb") as fh:  # np.savez would append .npz to a name without it
        np.savez(fh, **arrays)
    return {key: value.shape for key, value in arrays.items()}


def load_smpl_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a converted model file (no pickled objects are loaded)."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    if missing := [k for k in REQUIRED_KEYS if k not in arrays]:
        raise SmplFileError(f"{path} is not an SMPL-format model file (missing {missing})")
    return arrays
