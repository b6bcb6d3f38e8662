"""Prediction heads of kMaX-DeepLab and ReMaX."""
