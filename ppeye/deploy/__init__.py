"""Deployment: export to Paddle Inference (``export``), the fitted feature pipeline
(``pipeline``), scoring new people (``infer``), int8 weights (``quantize``)."""
