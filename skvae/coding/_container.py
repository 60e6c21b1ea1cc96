"""The file format of :class:`~skvae.coding.BitsBackCoder` (no pickle anywhere).

Layout, all integers little-endian::

    magic        8 bytes   b"SKVAEBB\\x00"
    version      uint16    FORMAT_VERSION
    header_len   uint32
    header       header_len bytes of compact UTF-8 JSON (sorted keys, about
                 90 bytes for a plain array): "a" arithmetic version (see
                 skvae.coding._fixed_point), "c" constriction's major.minor
                 version, "f" fingerprint of the model, its column schema and
                 the coder parameters, "d" dtype, "s" shape, "p" coder
                 parameters (the values of PARAM_NAMES in order), "g" the
                 quantization grid of real columns (only when there is one),
                 "k" the number of importance samples (only when above 1),
                 "r" the ranges of integer columns whose values leave the
                 range seen in fit, "m" the scipy.sparse class of sparse
                 input, "i" a DataFrame's index unless it is 0 .. n-1, "n"
                 the missing rates of a table's columns, "h" the model kind
                 ("ladder": a HierarchicalVAE; absent: a single-layer
                 model) (each only when present); the number of chunks
                 follows from shape
                 and chunk size
    header_crc   uint32    CRC-32 of the header bytes
    n_chunks times:
        n_rows       uint32    rows in this chunk
        n_words      uint32    length of the ANS stream in 32-bit words
        ramp_len     uint32    length of the ramp field in bytes
        stream_crc   uint32    CRC-32 of the ramp and stream bytes
        rows_crc     uint32    CRC-32 of the chunk's original array bytes
        ramp         ramp_len bytes: LEB128 varints, the sizes of the blocks
                     between the first row and the full blocks; when the
                     header has "k" (n_particles > 1) these are the blocks
                     coded with one particle, and one more varint leads
                     them: the growth of the k-particle ramp that follows
                     (see skvae.coding._bitsback.block_bounds)
        stream       4 * n_words bytes (uint32 words)
    trailer      8 bytes   b"SKVAEEND"
    sha256       32 bytes  SHA-256 of the JSON list [dtype, shape, column schema,
                           grid] (sorted keys) followed by the whole original
                           array's bytes (C order): the bytes and how to read them

Every chunk is an independent ANS stream, so chunks can be written and read
one at a time and coded in parallel. :func:`parse` checks the whole structure
(lengths, CRCs, trailer) before any decoding starts, so truncated or damaged
input fails fast with ValueError.
"""

import json
import struct
import zlib

import numpy as np

__all__ = ["MAGIC", "FORMAT_VERSION", "PARAM_NAMES", "HEADER_KEYS", "write_preamble", "write_chunk",
           "write_trailer", "parse", "Chunk"]

MAGIC = b"SKVAEBB\x00"
TRAILER = b"SKVAEEND"
FORMAT_VERSION = 2  # 1: skvae <= 0.1, floating-point networks (decodes only where it was written)
_PREFIX = struct.Struct("<8sHI")
_RECORD = struct.Struct("<IIIII")
_U32 = struct.Struct("<I")
_MAX_HEADER = 1 << 20
PARAM_NAMES = ("chunk_size", "block_size", "latent_precision", "latent_clip", "likelihood_precision")
# header field -> its key in the file
HEADER_KEYS = {"arithmetic": "a", "constriction_version": "c", "dtype": "d", "fingerprint": "f", "grid": "g",
               "index": "i", "integer_ranges": "r", "missing": "n", "n_particles": "k", "params": "p", "shape": "s",
               "sparse": "m", "model_kind": "h"}


def write_preamble(stream, header):
    """Write magic, version and the header: a dict with the fields of HEADER_KEYS (params as a dict)."""
    compact = {key: header[name] for name, key in HEADER_KEYS.items() if header.get(name) is not None}
    compact["p"] = [header["params"][name] for name in PARAM_NAMES]
    body = json.dumps(compact, sort_keys=True, separators=(",", ":")).encode("utf-8")
    stream.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(body)))
    stream.write(body)
    stream.write(_U32.pack(zlib.crc32(body)))


def write_chunk(stream, n_rows, words, ramp, rows_crc):
    """Write one chunk record: its ANS words (uint32 array), ramp block sizes and CRCs."""
    payload = np.asarray(words, dtype="<u4").tobytes()
    ramp_bytes = _varints(ramp)
    crc = zlib.crc32(payload, zlib.crc32(ramp_bytes))
    stream.write(_RECORD.pack(n_rows, len(payload) // 4, len(ramp_bytes), crc, rows_crc))
    stream.write(ramp_bytes)
    stream.write(payload)


def _varints(values):
    out = bytearray()
    for value in values:
        value = int(value)
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                break
    return bytes(out)


def _read_varints(data):
    values, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            values.append(value)
            value, shift = 0, 0
        elif shift > 35:
            raise ValueError("corrupted bits-back file: bad block sizes")
    if shift:
        raise ValueError("corrupted bits-back file: bad block sizes")
    return values


def write_trailer(stream, digest):
    """Write the end marker and the SHA-256 digest of the original array."""
    stream.write(TRAILER + digest)


class Chunk:
    """A parsed chunk record; ``words`` is a uint32 view into the input."""

    __slots__ = ("n_rows", "words", "ramp", "rows_crc")

    def __init__(self, n_rows, words, ramp, rows_crc):
        self.n_rows = n_rows
        self.words = words
        self.ramp = ramp
        self.rows_crc = rows_crc


def parse(data):
    """Validate a whole file and split it into (header, chunks, digest).

    Parameters
    ----------
    data : bytes-like
        The complete file (bytes, bytearray, memoryview, mmap or uint8 array).

    Returns
    -------
    header : dict
    chunks : list of Chunk
    digest : bytes (32)

    Raises
    ------
    ValueError
        On any structural problem: wrong magic, unknown version, truncation,
        CRC mismatch, inconsistent row counts, trailing garbage.
    """
    view = memoryview(data).cast("B")
    size = len(view)
    if size < _PREFIX.size or bytes(view[:8]) != MAGIC:
        raise ValueError("not a skvae bits-back file (bad magic bytes)")
    _, version, header_len = _PREFIX.unpack_from(view, 0)
    if version == 1:
        raise ValueError("this file has bits-back format version 1, written by an older skvae whose "
                         "floating-point coder decodes only on the machine that wrote it; this skvae "
                         f"reads version {FORMAT_VERSION}: decode it with the skvae and machine that wrote it")
    if version != FORMAT_VERSION:
        raise ValueError(f"unsupported bits-back format version {version} (this skvae reads {FORMAT_VERSION})")
    pos = _PREFIX.size
    if header_len > _MAX_HEADER or pos + header_len + 4 > size:
        raise ValueError("truncated or corrupted bits-back file (header)")
    body = bytes(view[pos:pos + header_len])
    pos += header_len
    if zlib.crc32(body) != _U32.unpack_from(view, pos)[0]:
        raise ValueError("corrupted bits-back file: header checksum mismatch")
    pos += 4
    try:
        header = _expand(json.loads(body.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("corrupted bits-back file: header is not valid JSON") from None
    n_rows_total, n_chunks = _check_header(header)
    chunks, seen = [], 0
    for index in range(n_chunks):
        if pos + _RECORD.size > size:
            raise ValueError(f"truncated bits-back file: chunk {index} of {n_chunks} is missing")
        n_rows, n_words, ramp_len, stream_crc, rows_crc = _RECORD.unpack_from(view, pos)
        pos += _RECORD.size
        end = pos + ramp_len + 4 * n_words
        if end > size:
            raise ValueError(f"truncated bits-back file: chunk {index} of {n_chunks} is cut short")
        ramp_bytes, payload = view[pos:pos + ramp_len], view[pos + ramp_len:end]
        if zlib.crc32(payload, zlib.crc32(ramp_bytes)) != stream_crc:
            raise ValueError(f"corrupted bits-back file: checksum mismatch in chunk {index}")
        if n_rows == 0 or n_rows > header["params"]["chunk_size"]:
            raise ValueError(f"corrupted bits-back file: chunk {index} claims {n_rows} rows")
        ramp = _read_varints(bytes(ramp_bytes))
        sizes = ramp
        if header.get("n_particles") is not None:  # k > 1: the growth of the k-particle ramp leads
            sizes = ramp[1:]
            if not ramp:
                raise ValueError(f"corrupted bits-back file: bad block sizes in chunk {index}")
        if any(r < 1 for r in sizes) or 1 + sum(sizes) > n_rows:
            raise ValueError(f"corrupted bits-back file: bad block sizes in chunk {index}")
        words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)  # aligned native copy
        chunks.append(Chunk(n_rows, words, ramp, rows_crc))
        seen += n_rows
        pos = end
    if seen != n_rows_total:
        raise ValueError(f"corrupted bits-back file: chunks hold {seen} rows, header says {n_rows_total}")
    if size - pos < len(TRAILER) + 32:
        raise ValueError("truncated bits-back file: end marker missing")
    if bytes(view[pos:pos + len(TRAILER)]) != TRAILER:
        raise ValueError("corrupted bits-back file: bad end marker")
    pos += len(TRAILER)
    digest = bytes(view[pos:pos + 32])
    if pos + 32 != size:
        raise ValueError(f"corrupted bits-back file: {size - pos - 32} unexpected bytes after the end marker")
    return header, chunks, digest


def _expand(compact):
    """The header's fields by name (``params`` a dict, ``n_chunks`` derived) from the file's compact form."""
    keys = set(HEADER_KEYS.values())
    if not isinstance(compact, dict) or set(compact) - keys or not {"a", "c", "d", "f", "p", "s"} <= set(compact):
        raise ValueError("corrupted bits-back file: header fields are missing or malformed")
    header = {name: compact.get(key) for name, key in HEADER_KEYS.items()}
    params = header["params"]
    if not isinstance(params, list) or len(params) != len(PARAM_NAMES):
        raise ValueError("corrupted bits-back file: header fields are missing or malformed")
    header["params"] = dict(zip(PARAM_NAMES, params))
    return header


def _check_header(header):
    """Check the types of the header fields that parsing relies on; returns (rows, chunks)."""
    shape, params = header["shape"], header["params"]
    ok = (isinstance(shape, list) and len(shape) == 2
          and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
          and isinstance(params["chunk_size"], int) and params["chunk_size"] >= 1
          and isinstance(header["dtype"], str) and isinstance(header["fingerprint"], str))
    if not ok:
        raise ValueError("corrupted bits-back file: header fields are missing or malformed")
    header["n_chunks"] = -(-shape[0] // params["chunk_size"])
    return shape[0], header["n_chunks"]
