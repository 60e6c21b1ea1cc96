"""Helpers shared by the test modules of the coder."""

import json
import struct
import zlib

import numpy as np
import pandas as pd

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


def mixed_table(n, seed, flag=True):
    """A categorical, an integer, (with ``flag``) a 0/1 integer and a 2-decimal real column, seeded."""
    rng = np.random.RandomState(seed)
    count = rng.poisson(4, n)
    columns = {"color": pd.Categorical(rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2])),
               "count": count.astype(np.int64)}
    if flag:  # (bool + categorical: issue #18)
        columns["flag"] = ((count + rng.randint(0, 3, n)) > 5).astype(np.int64)
    columns["size"] = np.round(count * 0.3 + rng.randn(n), 2) + 0.0  # + 0.0: no -0.0
    return pd.DataFrame(columns)


def with_holes(table, rate, seed):
    """``table`` with a share ``rate`` of each column's cells missing (seeded)."""
    rng = np.random.RandomState(seed)
    out = table.copy()
    for column in out.columns:
        out.loc[rng.rand(len(out)) < rate, column] = None
    return out


# The start of a decode script run in a fresh process: with SKVAE_TEST_BLOCK_TORCH set, importing torch
# or skorch fails there, as on a machine without them (the portable coder must not need them).
BLOCK_TORCH = """
import os, sys
if os.environ.get("SKVAE_TEST_BLOCK_TORCH"):
    class _Block:  # import torch (and skorch) fails, as where they are not installed
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "skorch"):
                raise ImportError(f"{name} is not available")
    sys.meta_path.insert(0, _Block())
"""
