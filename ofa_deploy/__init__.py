"""ofa-deploy: take Once-for-All elastic supernets to real hardware."""
__version__ = "0.1.0"
