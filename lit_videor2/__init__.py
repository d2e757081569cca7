"""lit_videor2: Lightning post-training of video language models for consistent, grounded reasoning (Video-R2)."""

__version__ = "0.1.0"
