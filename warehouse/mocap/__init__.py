"""3D motion capture: skeletal motion (forward kinematics, resampling), the held-out split, the mocap tables."""
