"""The built-in model families, one module each; importing this package registers them (`spaces.family`).

``ofa_deploy`` imports it on load, so the OFA names (``ofa_mbv3_w10``, ``ofa_mbv3_w12``, ``ofa_proxyless_w13``,
``ofa_resnet50``) are known wherever the package is used. A new family is a module like these: one
`ModelFamily` declaration passed to `register_family`.
"""
from ofa_deploy.families import mobilenetv3, proxyless, resnet

__all__ = ["mobilenetv3", "proxyless", "resnet"]
