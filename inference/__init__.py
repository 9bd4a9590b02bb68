"""Restoring a trained run from its checkpoint (restore.py), and putting it to use: prediction on new images
(predict.py), the decision threshold, the Python API (detector.py) and SavedModel export (export.py)."""
