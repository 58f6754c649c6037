"""Open a predicted track's BVH and glTF exports in Blender and compare them with the predictions (run by hand).

With the venv's Python it exports track TRACK of an ``hmmr predict`` folder (``model.export``), then
runs itself inside headless Blender (Debian's ``blender`` and ``python3-numpy``:
``apt-get install -y --no-install-recommends blender python3-numpy``), which imports both files with
Blender's own importers and prints, at three frames, how far Blender's posed joints (BVH) and skinned
vertices (glTF) lie from the predictions' ``joints3d`` / ``vertices`` (plus ``transl``, turned Y-up;
the export uses the track's mean shape, so a little of the gap is the per-frame shape).

    .venv/bin/python scripts/blender_check.py HMMR_HOME/predictions/<video>/ TRACK
"""

from __future__ import annotations

import sys

FRAMES = 3  # frames compared: first, middle, last


def inside_blender(folder: str) -> None:
    """Blender's side: import, pose, compare (Blender's importers turn Y up into Z up: (x, -z, y))."""
    import builtins

    import bpy
    import numpy as np

    _open = builtins.open
    builtins.open = lambda f, mode="r", *a, **k: _open(f, mode.replace("U", ""), *a, **k)  # Debian's Blender 3.4 BVH importer opens 'rU'
    np.bool = bool  # and its glTF importer uses np.bool (gone in numpy 1.24)
    exp = np.load(f"{folder}/expected.npz")
    names, fps = [str(n) for n in exp["names"]], float(exp["fps"])
    frames = np.linspace(0, len(exp["joints"]) - 1, FRAMES).round().astype(int)
    z_up = lambda p: np.stack([p[..., 0], -p[..., 2], p[..., 1]], -1)  # noqa: E731

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_anim.bvh(filepath=f"{folder}/track.bvh", frame_start=1, update_scene_fps=True, update_scene_duration=True)
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    print(f"BVH: {len(arm.data.bones)} bones, frames {tuple(arm.animation_data.action.frame_range)}, scene {bpy.context.scene.render.fps} fps")
    for f in frames:
        bpy.context.scene.frame_set(int(f) + 1)
        heads = np.array([list(arm.matrix_world @ arm.pose.bones[n].head) for n in names])
        print(f"  frame {f}: joints at most {1000 * np.abs(heads - z_up(exp['joints'][f])).max():.2f} mm from the predictions'")

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = round(fps)  # the glTF importer keys the animation at the scene's rate
    bpy.ops.import_scene.gltf(filepath=f"{folder}/track.glb")
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    mesh = next(o for o in bpy.data.objects if o.type == "MESH")
    start = arm.animation_data.action.frame_range[0]
    print(f"glTF: {len(arm.data.bones)} bones, {len(mesh.data.vertices)} vertices, {len(mesh.data.polygons)} faces, "
          f"frames {tuple(arm.animation_data.action.frame_range)}")
    for f in frames:
        bpy.context.scene.frame_set(int(round(start + f * round(fps) / fps)))
        ev = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get())
        verts = np.array([list(ev.matrix_world @ v.co) for v in ev.to_mesh().vertices])
        ev.to_mesh_clear()
        err = 1000 * np.linalg.norm(verts - z_up(exp["vertices"][f]), axis=1)
        print(f"  frame {f}: skinned vertices {err.mean():.2f} mm from the predictions' on average, at most {err.max():.1f} mm")


def main() -> None:
    import argparse
    import subprocess
    import tempfile
    from pathlib import Path

    import numpy as np

    from hmmr.config import Settings
    from model.body import SMPL_JOINTS
    from model.export import CAMERA_TO_Y_UP, export_motion
    from model.export.predictions import body_model_for, track_parameters
    from model.prediction_files import read_predictions

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("predictions", type=Path, help="an hmmr predict output folder")
    ap.add_argument("track", type=int)
    ap.add_argument("--blender", default="blender")
    args = ap.parse_args()
    params = track_parameters(args.predictions, args.track)
    motion = read_predictions(args.predictions).tracks[args.track]
    body = body_model_for(params.meta, Settings())
    work = Path(tempfile.mkdtemp(prefix="hmmr-blender-"))
    for suffix in (".bvh", ".glb"):
        export_motion(work / f"track{suffix}", params.pose, params.shape, params.transl, params.fps, body)
    transl = motion.transl[:, None].astype(np.float64)
    np.savez(work / "expected.npz", names=np.array(SMPL_JOINTS), fps=params.fps,
             joints=(motion.joints3d + transl) @ CAMERA_TO_Y_UP.T, vertices=(motion.vertices + transl) @ CAMERA_TO_Y_UP.T)
    out = subprocess.run([args.blender, "-b", "--factory-startup", "--python", __file__, "--", "--inside", str(work)],
                         capture_output=True, text=True, timeout=600)
    print("\n".join(line for line in out.stdout.splitlines() if line.startswith(("BVH", "glTF", "  frame", "Error"))))
    if out.returncode != 0 or "Error" in out.stdout:
        raise SystemExit(out.stderr[-2000:] or "blender failed")


if __name__ == "__main__":
    if "--inside" in sys.argv:
        inside_blender(sys.argv[sys.argv.index("--inside") + 1])
    else:
        main()
