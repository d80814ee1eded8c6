"""The networks, as plain ``nn.Module``s that know nothing of files, video or the registry."""

from .ecbsr import ECB, ECBSR, PlainSR, SeqConv3x3
from .edgesr import ESRCNN, ESRTM, ESRTR, ESRMax
from .ensemble import SelfEnsemble

__all__ = ["ECB", "ECBSR", "ESRCNN", "ESRMax", "ESRTM", "ESRTR", "PlainSR", "SelfEnsemble",
           "SeqConv3x3"]
