"""Architecture option names, importable without TensorFlow (config validation uses them)."""
NORMALIZATIONS = ("none", "batch", "layer", "instance")
ACTIVATIONS = ("lrelu", "relu")
UPSAMPLINGS = ("bilinear", "transpose")
FEATURE_LAYERS = ("first_conv", "joint")
