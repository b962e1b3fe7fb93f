"""Retrieval-augmented inference: a faiss index of the training set's fused embeddings whose
k nearest neighbours' label mean is blended with the model's probabilities (``index.py``)."""
from .index import RetrievalIndex, build_index

__all__ = ["RetrievalIndex", "build_index"]
