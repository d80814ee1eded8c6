"""Media input and output. Only this package imports PyAV.

``VideoReader`` decodes a file to planes (``VideoFrame``) and describes it (``VideoInfo``);
``VideoWriter`` encodes upscaled planes and copies the other streams; ``EncodeOptions`` holds
the encoder settings.
"""

from .encoders import EncodeOptions
from .reader import StreamPacket, VideoFrame, VideoInfo, VideoReader
from .writer import VideoWriter

__all__ = ["EncodeOptions", "StreamPacket", "VideoFrame", "VideoInfo", "VideoReader",
           "VideoWriter"]
