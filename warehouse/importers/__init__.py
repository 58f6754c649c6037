"""Importers: keypoints made elsewhere, into the same tables a harvest writes."""
