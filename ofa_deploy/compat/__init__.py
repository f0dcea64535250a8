"""Interop with the reference OFA release: checkpoints, net.configs, arch dicts, LUT YAML, predictor weights."""
