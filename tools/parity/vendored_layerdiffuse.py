"""Imports the vendored original LayerDiffuse code (vendor/diffuser_layerdiffuse, unchanged).

Its modules.py imports cv2 at the top for image helpers that the fixtures never call; when OpenCV
is not installed an empty stand-in module is registered (after diffusers' own modules are
imported, so that diffusers still sees OpenCV as absent).
"""
import importlib.machinery
import os
import sys
import types

import diffusers.models.autoencoders.autoencoder_kl  # noqa: F401
import diffusers.models.autoencoders.vae  # noqa: F401

VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor", "diffuser_layerdiffuse")
if VENDOR not in sys.path:
    sys.path.insert(0, VENDOR)
try:
    import cv2  # noqa: F401
except ImportError:
    stub = types.ModuleType("cv2")
    stub.__spec__ = importlib.machinery.ModuleSpec("cv2", None)
    sys.modules["cv2"] = stub

from layer_diffuse.models.attention_processors import (  # noqa: E402,F401
    AttentionSharingProcessor, AttentionSharingProcessor2_0, LoraLoader)
from layer_diffuse.models.modules import (  # noqa: E402,F401
    LatentTransparencyOffsetEncoder, TransparentVAEDecoder, UNet1024)
