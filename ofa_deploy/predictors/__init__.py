"""Predictors: MACs/params, latency (LUT), architecture encoders, accuracy."""
