"""File-integrity checks: a NIfTI, NRRD or MetaImage file must hold all the voxel data its header declares (issue 10).

Readers zero-fill or return garbage for cut or corrupt files (SimpleITK reads a .nii cut in half as a full-size
volume), so the header is parsed here and the data counted, compressed data inflated once and its checksums
verified, before any reader runs. Other formats pass unchecked, left to their reader.
"""

from __future__ import annotations

import math
import warnings
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import nibabel as nib
import numpy as np

__all__ = ["check_payload"]

_GZIP_MAGIC = b"\x1f\x8b"
_HEADER_BYTES = 1 << 16  # NRRD and MetaImage text headers are parsed from the first 64 KiB
_READ_CHUNK = 1 << 20  # compressed bytes read per step when inflating a payload
_INFLATE_STEP = 1 << 24  # most inflated bytes per step, which bounds the memory of the check
_NRRD_TYPE_BYTES = {
    **dict.fromkeys(("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"), 1),
    **dict.fromkeys(
        ("short", "short int", "signed short", "signed short int", "int16", "int16_t")
        + ("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"),
        2,
    ),
    **dict.fromkeys(("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t"), 4),
    **dict.fromkeys(
        ("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64", "int64_t")
        + ("ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"),
        8,
    ),
    "float": 4,
    "double": 8,
}
# MetaIO's MET_ValueTypeSize: MET_LONG and MET_ULONG are 4 bytes there whatever the platform's long.
_META_TYPE_BYTES = {
    "MET_CHAR": 1,
    "MET_UCHAR": 1,
    "MET_SHORT": 2,
    "MET_USHORT": 2,
    "MET_INT": 4,
    "MET_UINT": 4,
    "MET_LONG": 4,
    "MET_ULONG": 4,
    "MET_LONG_LONG": 8,
    "MET_ULONG_LONG": 8,
    "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
}


class _Payload(NamedTuple):
    """Where a file's voxel data lies and how many bytes of it its header declares."""

    file: Path  # the file holding the data: the image itself, or a detached data file
    start: int  # byte offset of the data (of the compressed stream, when compressed)
    compressed: bool  # a gzip/zlib stream, counted once inflated; else raw bytes on disk
    expected: int | None  # bytes the header declares from ``start`` (inflated); None when unknown
    layout: str  # what the header declares, for messages: "16 x 20 x 12 int16 voxels after a 352-byte header"


def _is_gzip(path: Path, start: int = 0) -> bool:
    """Whether the bytes of ``path`` from ``start`` begin a gzip stream."""
    with path.open("rb") as file:
        file.seek(start)
        return file.read(2) == _GZIP_MAGIC


def _nifti_payload(path: Path) -> _Payload | None:
    """Payload of a NIfTI-1/2 or Analyze file (.nii, .nii.gz, .hdr/.img) from its header, read by nibabel."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # header oddities (qfac, units) are the reader's business, not ours
            image: Any = nib.load(str(path))  # a SpatialImage with an ArrayProxy, when it parses
        proxy = image.dataobj
        shape, offset = tuple(int(n) for n in proxy.shape), int(proxy.offset)
        dtype = np.dtype(image.get_data_dtype())
        data_file = Path(image.file_map["image"].filename)
    except Exception:  # not a header nibabel can parse: the reader decides (a cut gzip stream is still caught)
        return None if not _is_gzip(path) else _Payload(path, 0, True, None, "a NIfTI file")
    compressed = _is_gzip(data_file)
    nbytes = math.prod(shape) * dtype.itemsize
    # Inside a .nii(.gz) the data follows the header, in the same (inflated) stream; an .img holds data only.
    layout = f"{' x '.join(map(str, shape))} {dtype.name} voxels after a {offset}-byte header"
    return _Payload(data_file, 0, compressed, offset + nbytes, layout)


def _header_fields(text: str, separator: str) -> dict[str, str]:
    """``key<separator>value`` lines of a text header, keys lower-cased; comments and other lines skipped."""
    fields = {}
    for line in text.splitlines():
        key, found, value = line.partition(separator)
        if found and not line.startswith("#"):
            fields[key.strip().lower()] = value.strip()
    return fields


def _nrrd_payload(path: Path) -> _Payload | None:
    """Payload of an NRRD file, attached (.nrrd) or detached (.nhdr + data file), raw or gzip encoded."""
    with path.open("rb") as file:
        head = file.read(_HEADER_BYTES)
    if not head.startswith(b"NRRD000"):
        return None
    ends = [(head.find(mark), len(mark)) for mark in (b"\n\n", b"\r\n\r\n") if head.find(mark) >= 0]
    end, mark = min(ends) if ends else (len(head), 0)
    fields = _header_fields(head[:end].decode("latin-1"), ": ")
    try:
        sizes = [int(n) for n in fields["sizes"].split()]
        item = _NRRD_TYPE_BYTES[" ".join(fields["type"].lower().split())]
        encoding = fields.get("encoding", "raw").lower()
        byte_skip = int(fields.get("byte skip", fields.get("byteskip", "0")))
        line_skip = int(fields.get("line skip", fields.get("lineskip", "0")))
    except (KeyError, ValueError):  # an exotic header (block type, missing field): the reader decides
        return None
    data_name = fields.get("data file", fields.get("datafile"))
    if data_name is not None and (" " in data_name or data_name.upper() == "LIST"):
        return None  # a list or pattern of data files: left to the reader
    if encoding not in ("raw", "gzip", "gz") or line_skip:
        return None  # text and bzip2 encodings and line skips are rare: left to the reader
    if data_name is None:
        if not ends:
            return None
        data_file, start = path, end + mark
    else:
        data_file, start = path.parent / data_name, 0
        if not data_file.is_file():
            raise FileNotFoundError(f"data file {data_file} named by the NRRD header {path} not found")
    nbytes = math.prod(sizes) * item
    layout = f"{' x '.join(map(str, sizes))} {fields['type']} voxels ({encoding})"
    if encoding == "raw":
        # byte skip -1: the data is the last bytes of the file, so only the total size can be checked.
        return _Payload(data_file, start + max(byte_skip, 0), False, nbytes, layout)
    return _Payload(data_file, start, True, nbytes + max(byte_skip, 0), layout)


def _meta_payload(path: Path) -> _Payload | None:
    """Payload of a MetaImage file: .mha (data inside) or .mhd (+ data file), raw or zlib compressed."""
    with path.open("rb") as file:
        head = file.read(_HEADER_BYTES)
    end = 0
    for line in head.splitlines(keepends=True):
        end += len(line)
        if line.split(b"=")[0].strip().lower() == b"elementdatafile":
            break
    else:
        return None  # no ElementDataFile line: not a MetaImage header
    fields = _header_fields(head[:end].decode("latin-1"), "=")
    try:
        sizes = [int(n) for n in fields["dimsize"].split()]
        item = _META_TYPE_BYTES[fields["elementtype"].upper()]
        channels = int(fields.get("elementnumberofchannels", "1"))
        header_size = int(fields.get("headersize", "0"))
    except (KeyError, ValueError):
        return None
    data_name = fields["elementdatafile"]
    binary = fields.get("binarydata", "true").lower() == "true"
    if not binary or data_name.upper() == "LIST" or "%" in data_name or " " in data_name:
        return None  # text data and slice lists are rare: left to the reader
    compressed = fields.get("compresseddata", "false").lower() == "true"
    if data_name.upper() == "LOCAL":
        data_file, start = path, end
    else:
        # HeaderSize -1: the data is the last bytes of the file, so only the total size can be checked.
        data_file, start = path.parent / data_name, max(header_size, 0)
        if not data_file.is_file():
            raise FileNotFoundError(f"data file {data_file} named by the MetaImage header {path} not found")
    layout = f"{' x '.join(map(str, sizes))} {fields['elementtype']} voxels" + (
        f" of {channels} channels" if channels != 1 else ""
    )
    return _Payload(data_file, start, compressed, math.prod(sizes) * channels * item, layout)


def _inflate(file: Path, start: int) -> tuple[int, str | None]:
    """Inflated length of the gzip/zlib stream(s) from byte ``start`` of ``file``, and what is wrong with them.

    Returns ``(n_bytes, None)`` for intact streams (several gzip members in a row count as one, as readers do).
    Otherwise the second item says why: the data is corrupt (a checksum or code fails) or ends early.
    """
    total = 0
    # wbits 47 = 32 + 15: accept a gzip or a zlib header, with the full 32 KiB window.
    decoder = zlib.decompressobj(47)
    with file.open("rb") as stream:
        stream.seek(start)
        data = stream.read(_READ_CHUNK)
        try:
            while True:
                # Output per call is capped: air compresses ~1000:1, so one input chunk can inflate to a GB.
                total += len(decoder.decompress(data, _INFLATE_STEP))
                if decoder.eof:
                    data = decoder.unused_data
                    if len(data) < 2:
                        data += stream.read(_READ_CHUNK)
                    if not data.startswith(_GZIP_MAGIC):
                        return total, None  # the end; trailing padding is ignored, as readers ignore it
                    decoder = zlib.decompressobj(47)  # another gzip member follows
                    continue
                data = decoder.unconsumed_tail or stream.read(_READ_CHUNK)
                if not data:
                    total += len(decoder.flush())  # input bits already taken in may still hold output
                    if decoder.eof:
                        return total, None
                    return total, "ends"
        except zlib.error as error:
            return total, f"corrupt (zlib: {error})"


_PAYLOAD_PARSERS = (
    ((".nii", ".nii.gz", ".hdr", ".hdr.gz", ".img", ".img.gz"), _nifti_payload),
    ((".nrrd", ".nhdr"), _nrrd_payload),
    ((".mha", ".mhd"), _meta_payload),
)


def check_payload(path: Path, name: str) -> None:
    """Raise ``ValueError`` if a NIfTI, NRRD or MetaImage file holds less voxel data than its header declares.

    Compressed data is inflated once, to count it and to verify its checksums (gzip CRC-32, zlib Adler-32).
    Other formats pass unchecked, left to their reader.
    """
    lower = path.name.lower()
    parse = next((parse for suffixes, parse in _PAYLOAD_PARSERS if lower.endswith(suffixes)), None)
    payload = None if parse is None else parse(path)
    if payload is None:
        return
    stream = "its compressed data" if payload.file == path else f"the compressed data in its data file {payload.file}"
    declared = "" if payload.expected is None else f"its header declares {payload.layout}: {payload.expected:,} bytes"
    advice = "re-export the image, or download or copy it again (interrupted transfers cut files short)"
    if payload.compressed:
        actual, problem = _inflate(payload.file, payload.start)
        context = f" ({declared})" if declared else ""
        if problem == "ends":
            raise ValueError(
                f"{name} file {path} is truncated: {stream} ends without its end-of-stream marker "
                f"after {actual:,} inflated bytes{context}; {advice}"
            )
        if problem is not None:
            raise ValueError(f"{name} file {path} is damaged: {stream} is {problem}{context}; {advice}")
        found = f"{stream} inflates to only {actual:,}"
    else:
        actual = payload.file.stat().st_size - payload.start
        found = (
            f"{'the file' if payload.file == path else f'its data file {payload.file}'} holds only {max(actual, 0):,}"
        )
    if payload.expected is not None and actual < payload.expected:
        raise ValueError(
            f"{name} file {path} is truncated: {declared}, but {found} ({payload.expected - actual:,} bytes "
            f"missing); {advice}"
        )
