"""kMaX-DeepLab's pixel decoder."""
