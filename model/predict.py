"""A trained HMMR checkpoint applied to new data: whole tracks (3D motion) and single images (past,
present and future from the hallucinator).

Plain functions over numpy arrays and the model, no Prefect and no files (``flows/predict.py`` reads
the tracks from the warehouse; :mod:`model.prediction_files` writes what comes out).

* :func:`load_predictor` — a checkpoint of ``hmmr train`` with the body model it was trained with;
  clear :class:`~model.train.CheckpointMismatch` errors for anything else;
* :func:`predict_motion` — one track with the paper's sliding windows
  (:func:`model.evaluate.predict_track`), then the body model for the mesh, the cameras moved from the
  224 crop to the original image (:func:`model.camera.crop_camera_to_image`);
* :func:`people_in_image` and :func:`hallucinate` — the people of one image, cropped as the harvest
  crops a track, through the hallucinator: the poses at t - 5, t, t + 5.

Units: angles in radians (axis-angle, SMPL joint order, global rotation first), lengths in metres in
the body frame (x right, y down, z away from the camera once the global rotation is applied: HMMR's
upright convention), image coordinates in pixels of the original frame (pixel centres).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydantic
import torch

from model.body import BodyModel, load_body_model
from model.camera import crop_camera_to_image
from model.config import HMMRConfig
from model.evaluate import predict_track
from model.networks import HMMR
from model.skeleton import KeypointSkeleton
from model.train import CheckpointMismatch, pick_device, read_checkpoint
from pose_harvest.curate import RawTrack, curate_track
from warehouse.crops import crop_images, crop_matrices, transform_keypoints

MESH_CHUNK = 64  # bodies posed at once (smplx's skinning holds a 4 x 4 matrix per vertex)


@dataclass
class Predictor:
    """A trained model ready to predict: the network (eval mode), the body model it was trained with
    and that body reduced to keypoints, on ``device``; ``step`` and ``extra`` from the checkpoint."""

    model: HMMR
    body: BodyModel
    skeleton: KeypointSkeleton
    device: torch.device
    checkpoint: Path
    step: int
    extra: dict = field(default_factory=dict)

    @property
    def cfg(self) -> HMMRConfig:
        return self.model.cfg

    @property
    def faces(self) -> np.ndarray:
        """``(F, 3)`` int32 triangles of the body mesh."""
        return self.body.faces.cpu().numpy().astype(np.int32)


def load_predictor(checkpoint: str | Path, settings, smpl_path: str | Path | None = None,
                   device: str = "auto", log=print) -> Predictor:
    """The model of ``checkpoint`` (a ``last.pt`` of ``hmmr train``) with its body model.

    Raises :class:`CheckpointMismatch` with the fix when the file is not an hmmr checkpoint, was
    written by a version of hmmr with other model settings, or was trained with another body model
    (SMPL vs the open model) than the one ``smpl_path`` / ``HMMR_SMPL_PATH`` selects.
    """
    path = Path(checkpoint)
    state = read_checkpoint(path)
    try:
        cfg = HMMRConfig(**state["config"])
    except pydantic.ValidationError as exc:
        fields = sorted({str(e["loc"][0]) for e in exc.errors() if e.get("loc")})
        raise CheckpointMismatch(f"{path} was written with model settings this hmmr does not know ({', '.join(fields)}): "
                                 "predict with the hmmr version that trained it, or train a new checkpoint") from exc
    dev = pick_device(device)
    body = load_body_model(settings, smpl_path=smpl_path, device="cpu", log=log)
    trained = state.get("extra", {}).get("body")
    if trained and trained != body.kind:
        fix = "pass --smpl PATH (or set HMMR_SMPL_PATH) to the SMPL file it was trained with" if trained == "smpl" \
            else "unset HMMR_SMPL_PATH and drop --smpl to use the open body model"
        raise CheckpointMismatch(f"{path} was trained with the {trained} body model, not the {body.kind} one: {fix}")
    model = HMMR(cfg)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointMismatch(f"{path} does not fit its own model settings ({first}): the file is damaged or "
                                 "was written by another program; train a new checkpoint") from exc
    model.to(dev).eval()
    skeleton = KeypointSkeleton.from_body_model(body).to(dev)
    return Predictor(model=model, body=body.to(dev), skeleton=skeleton, device=dev,
                     checkpoint=path, step=int(state.get("step", 0)), extra=dict(state.get("extra", {})))


@torch.no_grad()
def pose_bodies(body: BodyModel, pose: np.ndarray, shape: np.ndarray, chunk: int = MESH_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``(N, V, 3)`` and the 24 SMPL joints ``(N, 24, 3)``, metres, of ``pose`` ``(N, 72)`` and
    ``shape`` ``(N, 10)``, ``chunk`` bodies at a time."""
    verts, joints = [], []
    dev = body.faces.device
    for i in range(0, len(pose), chunk):
        out = body(torch.as_tensor(pose[i:i + chunk], dtype=torch.float32, device=dev),
                   torch.as_tensor(shape[i:i + chunk], dtype=torch.float32, device=dev))
        verts.append(out.vertices.cpu().numpy())
        joints.append(out.joints.cpu().numpy())
    if not verts:
        return np.zeros((0, body.n_vertices, 3), np.float32), np.zeros((0, 24, 3), np.float32)
    return np.concatenate(verts), np.concatenate(joints)


def image_translation(cam_image: np.ndarray, width: int, height: int, focal_px: float) -> np.ndarray:
    """``(..., 3)`` metres: where a pinhole camera of focal length ``focal_px`` (pixels, principal point
    at the image centre) sees the body as the weak-perspective ``cam_image`` ``(s_px, tx_px, ty_px)``
    does: ``tz = focal_px / s_px``, ``tx = (tx_px - (W - 1) / 2) / s_px``, ``ty = (ty_px - (H - 1) / 2) / s_px``."""
    cam = np.asarray(cam_image, np.float64)
    s = cam[..., :1]
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    return np.concatenate([(cam[..., 1:] - centre) / s, focal_px / s], -1)


@dataclass(frozen=True)
class TrackMotion:
    """One track predicted frame by frame (N frames). See :mod:`model.prediction_files` for units."""

    frames: np.ndarray  #: (N,) int frame indices of the video
    has_detection: np.ndarray  #: (N,) bool, False where the curation interpolated the person
    pose: np.ndarray  #: (N, 72) axis-angle, radians
    shape: np.ndarray  #: (N, 10)
    cam_crop: np.ndarray  #: (N, 3) s, tx, ty of the 224 crop normalised to [-1, 1]
    cam_image: np.ndarray  #: (N, 3) s_px (pixels per metre), tx_px, ty_px (pixels)
    transl: np.ndarray  #: (N, 3) metres, pinhole equivalent of cam_image (see image_translation)
    joints3d: np.ndarray  #: (N, 24, 3) SMPL joints, metres
    kps3d: np.ndarray  #: (N, 25, 3) HMMR-25 keypoints, metres
    kps2d_image: np.ndarray  #: (N, 25, 2) HMMR-25 keypoints projected into the image, pixels
    vertices: np.ndarray  #: (N, V, 3) mesh, metres

    def vertices_image(self, i: int) -> np.ndarray:
        """``(V, 3)`` frame ``i``'s mesh in image pixels (x, y) and depth ``s_px * Z`` (pixels, away
        from the camera): what :class:`model.mesh_render.MeshRenderer` draws."""
        s, tx, ty = self.cam_image[i]
        v = self.vertices[i]
        return np.stack([s * v[:, 0] + tx, s * v[:, 1] + ty, s * v[:, 2]], 1).astype(np.float32)


def predict_motion(pred: Predictor, inputs: np.ndarray, affine: np.ndarray, frames: np.ndarray,
                   has_detection: np.ndarray, image_size: tuple[int, int], focal_px: float | None = None) -> TrackMotion:
    """Predict one whole track.

    inputs: what the encoder reads, ``(N, 25, 3)`` crop-normalised keypoints (or ``(N, 3, 224, 224)``
    crops for the ResNet-50 encoder); affine: ``(N, 2, 3)`` image pixels -> crop pixels per frame;
    image_size: ``(width, height)`` pixels; focal_px: the pinhole focal length of ``transl``
    (default the image's longer side).
    """
    out = predict_track(pred.model, pred.skeleton, np.asarray(inputs, np.float32))
    theta = out["theta"].astype(np.float32)
    pose, shape, cam = theta[:, 3:75], theta[:, 75:], theta[:, :3]
    vertices, joints = pose_bodies(pred.body, pose, shape)
    cam_image = crop_camera_to_image(cam, affine).astype(np.float32)
    kps3d = out["kps3d"].astype(np.float32)
    width, height = image_size
    return TrackMotion(
        frames=np.asarray(frames, np.int64), has_detection=np.asarray(has_detection, bool), pose=pose, shape=shape,
        cam_crop=cam, cam_image=cam_image,
        transl=image_translation(cam_image, width, height, focal_px or max(width, height)).astype(np.float32),
        joints3d=joints.astype(np.float32), kps3d=kps3d,
        kps2d_image=(cam_image[:, None, :1] * kps3d[..., :2] + cam_image[:, None, 1:]).astype(np.float32),
        vertices=vertices.astype(np.float32),
    )


@dataclass(frozen=True)
class Hallucinated:
    """People of one image (P of them) at ``times`` (e.g. ``(-5, 0, 5)`` frames), from the
    hallucinator. ``pose[k]`` ``(P, 72)``, ``vertices[k]`` ``(P, V, 3)`` metres for time ``times[k]``;
    the shape ``(P, 10)`` and the camera ``cam_crop`` ``(P, 3)`` are the present's."""

    times: tuple[int, ...]
    pose: np.ndarray  #: (K, P, 72)
    shape: np.ndarray  #: (P, 10)
    cam_crop: np.ndarray  #: (P, 3)
    vertices: np.ndarray  #: (K, P, V, 3)


@torch.no_grad()
def hallucinate(pred: Predictor, inputs: np.ndarray) -> Hallucinated:
    """Past, present and future of single frames: ``inputs`` ``(P, 25, 3)`` crop-normalised keypoints
    (or ``(P, 3, 224, 224)`` crops) of P people -> the hallucinated movie strip's present and dynamics
    heads (paper Sec. 3.3). Raises ValueError for a model trained without a hallucinator."""
    model = pred.model
    if model.hallucinator is None:
        raise ValueError(f"{pred.checkpoint} has no hallucinator (trained with hallucinator=false): "
                         "single-image prediction needs one")
    phi = model.encode(torch.as_tensor(np.asarray(inputs, np.float32), device=pred.device)[:, None])
    theta, theta_dt = model.regress(model.hallucinator(phi))
    times = tuple(sorted([0, *theta_dt]))
    thetas = {0: theta[:, 0]} | {dt: th[:, 0] for dt, th in theta_dt.items()}
    poses = np.stack([thetas[t][:, 3:75].cpu().numpy() for t in times])
    shape = theta[:, 0, 75:].cpu().numpy()
    vertices = np.stack([pose_bodies(pred.body, p, shape)[0] for p in poses])
    return Hallucinated(times=times, pose=poses, shape=shape, cam_crop=theta[:, 0, :3].cpu().numpy(), vertices=vertices)


@dataclass(frozen=True)
class ImagePeople:
    """The people of one image, cropped the HMMR way: ``boxes`` ``(P, 4)`` pixels, ``affine``
    ``(P, 2, 3)`` image pixels -> crop pixels, ``kps`` ``(P, 25, 3)`` in the crop normalised to [-1, 1]."""

    boxes: np.ndarray
    affine: np.ndarray
    kps: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    def inputs(self, cfg: HMMRConfig, image: np.ndarray) -> np.ndarray:
        """What the encoder of ``cfg`` reads: these keypoints, or the ``(P, 3, 224, 224)`` crops of ``image``."""
        if cfg.encoder != "resnet50":
            return self.kps
        crops = crop_images(np.repeat(image[None], len(self), 0), self.affine)
        return crops.transpose(0, 3, 1, 2).astype(np.float32) / 255


def people_in_image(image: np.ndarray, detector) -> ImagePeople:
    """Detect the people of ``image`` ``(H, W, 3)`` uint8 RGB with ``detector`` (a
    :class:`pose_harvest.detectors.Detector`, reset first) and cut each one's crop as the harvest would
    for a one-frame track (centre and scale from the visible keypoints, :mod:`pose_harvest.curate`).
    People with fewer than two visible keypoints are left out."""
    detector.reset()
    boxes, affines, kps = [], [], []
    for person in detector.detect(image):
        seg = curate_track(RawTrack(0, np.array([0]), person.kps[None]), 0)[0]
        if not np.isfinite(seg.scale).all():
            continue
        m = crop_matrices(seg.center, seg.scale)
        boxes.append(person.bbox)
        affines.append(m[0])
        kps.append(transform_keypoints(person.kps[None], m, flip=False, normalise=True)[0])
    return ImagePeople(boxes=np.array(boxes, np.float32).reshape(-1, 4), affine=np.array(affines, np.float32).reshape(-1, 2, 3),
                       kps=np.array(kps, np.float32).reshape(-1, 25, 3))
