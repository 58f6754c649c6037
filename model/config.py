"""Every hyper-parameter of the HMMR model and its training, with the paper's / official code's defaults.

Sources: Kanazawa et al. 2019 (Sec. 4 "Architecture", "Training") and the authors' TensorFlow code
(``src/config.py``, ``src/models.py``, ``src/trainer_sequence_fc.py``), as summarised in
``shared/design/hmmr-reference.md``. A checkpoint stores this object; a checkpoint made with another
config is refused when loaded.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LossWeights(BaseModel):
    """Weights of the encoder losses (the paper's defaults: 60 for data terms, 1 for priors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kp: float = 60.0  # 2D keypoint L1, visibility weighted, present frame
    kp_dt: float = 60.0  # 2D keypoints of the past/future heads (closed-form camera)
    joints_3d: float = 60.0  # 0.5 * MSE of pelvis-aligned LSP-14 joints, where 3D exists
    smpl: float = 60.0  # 0.5 * MSE of rotation matrices + shape, where mocap parameters exist
    const_shape: float = 1.0  # 0.5 * MSE between the shapes of consecutive frames
    adversarial: float = 1.0  # LSGAN generator term of the pose discriminator
    shape_prior: float = 1.0  # mean squared beta
    hallucinate: float = 1.0  # MSE between hallucinated and real movie strips


class HMMRConfig(BaseModel):
    """Architecture and training settings. Units: frames for time, the 224 crop normalised to [-1, 1]
    for keypoints, metres for 3D joints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # data
    seq_len: int = Field(20, description="T, frames per training window")
    num_keypoints: int = Field(25, description="HMMR-25 keypoints; the first 14 are the LSP joints")
    visible_conf: float = Field(0.1, description="a keypoint is visible when its confidence is at least this")
    # per-frame encoder
    encoder: str = Field("keypoints", description="'keypoints' (embeds the 25 x 3 keypoints, CPU friendly) or 'resnet50' (images)")
    feature_dim: int = Field(2048, description="phi and Phi dimension")
    keypoint_hidden: int = 1024
    # temporal encoder f_movie
    temporal: bool = Field(True, description="False: the single-frame baseline (no f_movie, Phi = phi)")
    movie_blocks: int = Field(3, description="residual blocks of two k=3 convs: receptive field 1 + 4 * blocks = 13")
    movie_kernel: int = 3
    group_norm_groups: int = 32
    # regressors
    ief_iterations: int = 3
    ief_hidden: int = 1024
    ief_dropout: float = 0.5
    delta_t: tuple[int, ...] = Field((-5, 5), description="frames of the past/future dynamics heads")
    init_camera: tuple[float, float, float] = (0.9, 0.0, 0.0)
    optcam_scale: tuple[float, float] = Field((0.7, 10.0), description="clip of the closed-form camera scale")
    hallucinator: bool = True
    # discriminator
    disc_conv: int = 32
    disc_hidden: int = 1024
    # optimisation
    batch_size: int = 8
    lr_encoder: float = 1e-5
    lr_discriminator: float = 1e-4
    weight_decay: float = 1e-4
    weights: LossWeights = Field(default_factory=LossWeights)

    @property
    def theta_dim(self) -> int:
        """85 = camera (3) + pose (24 x 3 axis-angle) + shape (10)."""
        return 3 + 72 + 10
