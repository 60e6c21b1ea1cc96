"""Helpers shared by the test modules of the coder."""

import json
import struct
import zlib


def rewrite_header(data, **changes):
    """Change fields of a bits-back file's JSON header and recompute its CRC (a well-formed forgery)."""
    magic, version, length = struct.unpack_from("<8sHI", data, 0)
    header = json.loads(data[14:14 + length])
    header.update(changes)
    body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return (struct.pack("<8sHI", magic, version, len(body)) + body + struct.pack("<I", zlib.crc32(body))
            + data[14 + length + 4:])
