"""Prediction on new images (predict.py) and SavedModel export (export.py) of a trained run."""
