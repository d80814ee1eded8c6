"""Reading image files as the project's tools need them: 8- or 16-bit gray, RGB or RGBA,
upright."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError
from .webcam import quiet_opencv

_STDERR_LOCK = threading.RLock()  # one borrower of fd 2 at a time, process-wide


class CodecMessages:
    """What OpenCV's image codecs print to the process's stderr (libpng's "libpng error: ...",
    libjpeg's "Premature end of JPEG file") while the block runs, held back and offered as the
    reason for a failure: ``with CodecMessages() as said: ...``, then ``said.reason()`` in the
    error, or ``said.replay()`` after a success, which prints what was held back (from any
    thread: fd 2 is the process's) where it would have gone. One block at a time, process-wide.
    """

    def __init__(self) -> None:
        self.text = ""
        self._raw = b""
        self._saved: int | None = None

    def __enter__(self) -> CodecMessages:
        import sys
        import tempfile

        _STDERR_LOCK.acquire()
        try:
            sys.stderr.flush()
            self._file = tempfile.TemporaryFile()
        except (OSError, ValueError):
            self._file = None
            return self
        try:
            self._saved = os.dup(2)
            os.dup2(self._file.fileno(), 2)
        except OSError:  # no fd 2 to borrow: the messages go where they go
            if self._saved is not None:
                os.close(self._saved)
            self._saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._saved is not None:
                os.dup2(self._saved, 2)
                os.close(self._saved)
                self._saved = None
                self._file.seek(0)
                self._raw = self._file.read()
                lines = self._raw.decode(errors="replace").strip().splitlines()
                self.text = "; ".join(line.strip() for line in lines if line.strip())
        finally:
            if self._file is not None:
                self._file.close()
            _STDERR_LOCK.release()

    def reason(self) -> str:
        """`` (what the codec said)`` for an error line, or nothing."""
        return f" ({self.text})" if self.text else ""

    def replay(self) -> None:
        """Print what was held back, as it would have been printed (a success's warnings)."""
        if self._raw:
            with contextlib.suppress(OSError):
                os.write(2, self._raw)
            self._raw = b""


_SUN_RASTER = b"\x59\xa6\x6a\x95"


def read_image(path: Path, *, bits16: bool = False) -> np.ndarray:
    """An image as uint8 gray, RGB or RGBA, turned upright by its EXIF orientation; with
    ``bits16``, a 16-bit image (PNG, TIFF, PGM/PPM) comes as uint16, else it is refused."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    buf = np.frombuffer(data, np.uint8)
    restore = quiet_opencv()
    said = CodecMessages()
    try:
        with said:
            raw = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if data else None
            # IMREAD_UNCHANGED ignores EXIF orientation; ANYCOLOR applies it and keeps gray as
            # gray (ANYDEPTH keeps 16 bits)
            if raw is None or raw.dtype not in (np.uint8, np.uint16):
                img = None
            elif raw.ndim == 2 and data[:4] == _SUN_RASTER:
                # OpenCV reads an 8-bit Sun raster's palette only in colour: unchanged, a gray
                # one (as vidsr image writes it) came back all zeros
                img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
                if img is not None and (img[..., 0] == img[..., 1]).all() \
                        and (img[..., 1] == img[..., 2]).all():
                    img = np.ascontiguousarray(img[..., 0])
            elif (raw.ndim == 2 or raw.shape[2] == 3) and exif_orientation(data) == 1:
                img = raw  # what the second decode would give: no orientation, no alpha
            else:
                img = cv2.imdecode(buf, cv2.IMREAD_ANYCOLOR | (
                    cv2.IMREAD_ANYDEPTH if raw.dtype == np.uint16 else 0))
    except cv2.error as exc:  # a header claiming more pixels than OpenCV decodes, ...
        limit = "CV_IO_MAX_IMAGE_PIXELS" in str(exc)
        raise InputError(f"{path} is larger than OpenCV decodes (2^30 pixels; the environment "
                         "variable OPENCV_IO_MAX_IMAGE_PIXELS raises the limit)" if limit else
                         f"{path} is not a readable image{said.reason()}") from None
    finally:
        restore()
    if raw is None:
        raise InputError(f"{path} is not a readable image{said.reason()}")
    if raw.dtype != np.uint8 and not (bits16 and raw.dtype == np.uint16):
        took = "8- and 16-bit" if bits16 else "8-bit"
        raise InputError(f"{path}: only {took} images are supported, got {raw.dtype}")
    if img is None:
        raise InputError(f"{path} is not a readable image{said.reason()}")
    said.replay()  # a success's warnings (libpng's "iCCP: known incorrect sRGB profile")
    top = sample_max(data)
    full = np.iinfo(img.dtype).max
    if top is not None and top != full:
        # OpenCV hands over the file's codes as they are: a 12-bit AVIF or JPEG 2000 as 0..4095
        # in uint16, a PGM with maxval 99 as 0..99; stretched to the type's full range here, or
        # the picture came out nearly black
        img = _stretch(img, top)
        if raw.ndim == 3 and raw.shape[2] == 4:
            raw = _stretch(raw, top)
    if raw.ndim == 3 and raw.shape[2] == 4:  # turn the alpha image as OpenCV turned the colour
        upright = _orient(raw, exif_orientation(data))
        if not np.array_equal(upright[..., :3], img):  # OpenCV read the tag otherwise
            upright = next((t for t in _dihedral(raw) if np.array_equal(t[..., :3], img)), raw)
        return cv2.cvtColor(np.ascontiguousarray(upright), cv2.COLOR_BGRA2RGBA)
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _stretch(a: np.ndarray, top: int) -> np.ndarray:
    """``a``'s codes 0..``top`` onto its integer type's whole range, rounded."""
    full = np.iinfo(a.dtype).max
    return np.minimum(np.floor(a.astype(np.float64) * (full / top) + 0.5), full).astype(a.dtype)


def sample_max(data: bytes) -> int | None:
    """The largest code a sample of this image file can hold, where it is not what its decoded
    type holds and OpenCV does not rescale it: a PGM/PPM/PAM's maxval, a JPEG 2000 codestream's
    precision, an AVIF's 10 or 12 bits; None for the rest."""
    if data[:2] in (b"P2", b"P3", b"P5", b"P6"):
        fields: list[bytes] = []
        at = 2
        while len(fields) < 3 and at < len(data):
            while at < len(data) and data[at:at + 1].isspace():
                at += 1
            if data[at:at + 1] == b"#":  # a comment runs to the end of its line
                at = data.find(b"\n", at)
                at = len(data) if at < 0 else at
                continue
            end = at
            while end < len(data) and not data[end:end + 1].isspace() and data[end:end + 1] != b"#":
                end += 1
            fields.append(data[at:end])
            at = end
        return int(fields[2]) if len(fields) == 3 and fields[2].isdigit() else None
    if data[:3] == b"P7\n":  # PAM: a MAXVAL line in its header
        head = data[:data.find(b"ENDHDR")]
        for line in head.splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == b"MAXVAL" and words[1].isdigit():
                return int(words[1])
        return None
    siz = data.find(b"\xff\x4f\xff\x51")  # JPEG 2000: SOC then SIZ; Ssiz of component 0
    if siz >= 0 and (data[:2] == b"\xff\x4f" or data[4:12] == b"jP  \r\n\x87\n"):
        return (1 << ((data[siz + 42] & 0x7F) + 1)) - 1 if siz + 43 <= len(data) else None
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis", b"mif1", b"msf1"):
        at = data.find(b"av1C")  # the AV1 configuration: high_bitdepth and twelve_bit flags
        if at >= 0 and at + 7 <= len(data):
            flags = data[at + 6]
            return 4095 if flags & 0x60 == 0x60 else 1023 if flags & 0x40 else 255
    return None


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1-8) of a PNG (``eXIf``), WebP (``EXIF``), TIFF or JPEG
    (APP1) file's bytes; 1 when it has none or it cannot be read."""
    tiff = b""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        at = 8
        while at + 8 <= len(data):
            size = int.from_bytes(data[at:at + 4], "big")
            if data[at + 4:at + 8] == b"eXIf":
                tiff = data[at + 8:at + 8 + size]
                break
            if data[at + 4:at + 8] == b"IDAT":
                break
            at += 12 + size
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        at = 12
        while at + 8 <= len(data):
            size = int.from_bytes(data[at + 4:at + 8], "little")
            if data[at:at + 4] == b"EXIF":
                tiff = data[at + 8:at + 8 + size]
                break
            at += 8 + size + (size & 1)
    elif data[:4] in (b"II*\x00", b"MM\x00*"):
        tiff = data
    elif data[:2] == b"\xff\xd8":
        at = data.find(b"Exif\x00\x00")
        tiff = data[at + 6:] if at >= 0 else b""
    tiff = tiff.removeprefix(b"Exif\x00\x00")
    if tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        return 1
    order = "little" if tiff[:2] == b"II" else "big"
    ifd = int.from_bytes(tiff[4:8], order)
    count = int.from_bytes(tiff[ifd:ifd + 2], order)
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i:ifd + 14 + 12 * i]
        if len(entry) == 12 and int.from_bytes(entry[:2], order) == 0x0112:
            value = int.from_bytes(entry[8:10], order)
            return value if 1 <= value <= 8 else 1
    return 1


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """``a`` (as stored) turned upright for an EXIF orientation tag."""
    return {1: lambda: a, 2: lambda: a[:, ::-1], 3: lambda: a[::-1, ::-1],
            4: lambda: a[::-1], 5: lambda: a.swapaxes(0, 1),
            6: lambda: np.rot90(a, -1), 7: lambda: np.rot90(a[:, ::-1], -1),
            8: lambda: np.rot90(a, 1)}[orientation]()


def _dihedral(a: np.ndarray) -> list[np.ndarray]:
    """``a`` under the eight EXIF orientations (rotations by 90 degrees, with and without a
    mirror), the identity first."""
    return [np.rot90(m, k) for m in (a, a[:, ::-1]) for k in range(4)]
