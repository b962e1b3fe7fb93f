"""Small single-purpose layers; each file says which paper it follows."""
from .afno import AFNO1D, AFNOBlock
from .attention import MultiHeadAttention
from .fusion import CrossAttentionFusion
from .history import HistoryEncoder
from .moe import FeedForward, MoE
from .tabm import BatchEnsembleLinear, PiecewiseLinearEmbedding, TabM
from .transformer import EncoderLayer, LearnedPositions, SinusoidalPositions, TemporalTransformer

__all__ = ["AFNO1D", "AFNOBlock", "MultiHeadAttention", "CrossAttentionFusion", "FeedForward", "HistoryEncoder", "MoE",
           "BatchEnsembleLinear", "PiecewiseLinearEmbedding", "TabM", "EncoderLayer", "LearnedPositions",
           "SinusoidalPositions", "TemporalTransformer"]
