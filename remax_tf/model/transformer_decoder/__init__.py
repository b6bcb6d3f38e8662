"""kMaX-DeepLab's transformer decoder: k-means cross-attention layers."""
