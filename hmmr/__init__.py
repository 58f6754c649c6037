"""hmmr: harvest 2D human motion from video and learn 3D human dynamics (Kanazawa et al. 2019)."""

__version__ = "0.1.0"
