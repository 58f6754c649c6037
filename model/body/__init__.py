"""Body models: SMPL (the user's licensed file) or an open SMPL-format model derived from anny.

``load_body_model(settings, smpl_path=None, device="cpu") -> BodyModel`` is the one entry point;
``BodyModel(pose (B, 72), betas (B, 10)) -> BodyOutput`` with vertices, the 24 SMPL joints, the 25
HMMR keypoints and the LSP-14 joints, in metres. See ``docs/body_model.md`` for how the open model
differs from SMPL.
"""

from model.body.keypoints import KeypointMap, lsp_joints, smpl_keypoint_map
from model.body.layer import BodyModel, BodyOutput, load_body_model, open_model_facts, resolve_smpl_path
from model.body.open_model import SMPL_JOINTS, SMPL_PARENTS, OpenModelFacts, build_open_model, open_model_path
from model.body.smpl_file import SmplFileError, convert_smpl, load_smpl_npz, read_smpl_pickle

__all__ = [
    "BodyModel", "BodyOutput", "KeypointMap", "OpenModelFacts", "SMPL_JOINTS", "SMPL_PARENTS", "SmplFileError",
    "build_open_model", "convert_smpl", "load_body_model", "load_smpl_npz", "lsp_joints", "open_model_facts",
    "open_model_path", "read_smpl_pickle", "resolve_smpl_path", "smpl_keypoint_map",
]
