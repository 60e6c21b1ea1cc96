"""Helpers shared by the test modules of the coder."""

import json
import struct
import zlib

from skvae.coding._container import HEADER_KEYS, PARAM_NAMES


def rewrite_header(data, **changes):
    """Change fields of a bits-back file's header, by name, and recompute its CRC (a well-formed forgery).

    ``None`` removes a field; ``params`` is given as a dict.
    """
    magic, version, length = struct.unpack_from("<8sHI", data, 0)
    header = json.loads(data[14:14 + length])
    for name, value in changes.items():
        if name == "params":
            value = [value[p] for p in PARAM_NAMES]
        if value is None:
            header.pop(HEADER_KEYS[name], None)
        else:
            header[HEADER_KEYS[name]] = value
    body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return (struct.pack("<8sHI", magic, version, len(body)) + body + struct.pack("<I", zlib.crc32(body))
            + data[14 + length + 4:])
