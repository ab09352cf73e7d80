"""Example models shipped with tinyir (see make_kws_cnn.py for how they are built)."""

from pathlib import Path

KWS_CNN = Path(__file__).with_name("kws_cnn.onnx")
