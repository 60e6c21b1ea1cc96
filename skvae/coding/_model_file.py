"""The portable model file of :class:`~skvae.coding.BitsBackCoder` (no pickle anywhere).

A model file is a numpy ``.npz`` archive (a zip file) read with
``allow_pickle=False``, so loading it executes nothing from the file:

``config``
    uint8 array: UTF-8 JSON with ``format`` (``"skvae-coder-model"``),
    ``version`` (:data:`MODEL_FILE_VERSION`), ``model`` (the fixed-point
    networks' configuration, including the arithmetic version and the
    likelihood), ``params`` (the coding parameters), ``quantization`` (a list
    of ``[column, step]`` pairs, a single step, or null), ``schema`` (the
    column schema of a table, or null), ``feature_names`` and ``fingerprint``
    (SHA-256 of the model, recomputed and compared on load).
``encoder.<i>.weight``, ``encoder.<i>.bias``, ``decoder.<i>.weight``, ``decoder.<i>.bias``
    little-endian int64 arrays of the fixed-point layers
    (see :mod:`skvae.coding._fixed_point`). A hierarchical model's
    configuration has ``kind`` ``"ladder"`` and the arrays
    ``bottom_up.<l>.<i>.*``, ``head.<l>.0.*``, ``top_down.<l>.<i>.*`` and
    ``decoder.0.<i>.*`` (see :mod:`skvae.coding._ladder`).

Writing goes to a temporary file in the target folder, which is synced and
then renamed over the target, so a failed write never leaves a partial file
nor removes an existing one.
"""

import json
import os
import tempfile

import numpy as np

from ._ladder import portable_from_arrays

__all__ = ["MODEL_FILE_FORMAT", "MODEL_FILE_VERSION", "write_model_file", "read_model_file"]

MODEL_FILE_FORMAT = "skvae-coder-model"
MODEL_FILE_VERSION = 1
_MAX_CONFIG = 64 << 20


def _step_to_json(step):
    return step if step is None or step == "auto" else float(step)


def _quantization_to_json(quantization):
    if isinstance(quantization, dict):
        return [[key.item() if hasattr(key, "item") else key, _step_to_json(step)]
                for key, step in quantization.items()]
    return _step_to_json(quantization)


def _quantization_from_json(value):
    if isinstance(value, list):
        return {key: step for key, step in value}
    return value


def write_model_file(path, model, params, quantization, schema, feature_names):
    """Write a model file atomically (see the module docstring)."""
    config = {"format": MODEL_FILE_FORMAT, "version": MODEL_FILE_VERSION, "model": model.config(),
              "params": params, "quantization": _quantization_to_json(quantization), "schema": schema,
              "feature_names": feature_names, "fingerprint": model.fingerprint()}
    try:
        blob = json.dumps(config, sort_keys=True, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the coder cannot be saved: {exc}") from None
    arrays = {"config": np.frombuffer(blob, dtype=np.uint8), **model.arrays()}
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".skvae-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def read_model_file(path):
    """Read a model file; returns (model, params, quantization, schema, feature_names).

    Raises ValueError naming the problem for anything that is not an intact
    model file of this version.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except Exception as exc:  # zipfile, numpy and OS errors of damaged or foreign files
        raise ValueError(f"{path} is not a readable skvae model file ({type(exc).__name__}: {exc})") from None
    blob = arrays.pop("config", None)
    if blob is None or blob.dtype != np.uint8 or blob.ndim != 1 or len(blob) > _MAX_CONFIG:
        raise ValueError(f"{path} is not a skvae model file (no configuration record)")
    try:
        config = json.loads(blob.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path} is not a skvae model file (the configuration is not JSON)") from None
    if not isinstance(config, dict) or config.get("format") != MODEL_FILE_FORMAT:
        raise ValueError(f"{path} is not a skvae model file (format {config.get('format')!r})"
                         if isinstance(config, dict) else f"{path} is not a skvae model file")
    if config.get("version") != MODEL_FILE_VERSION:
        raise ValueError(f"{path} is a skvae model file of version {config.get('version')!r}; this skvae reads "
                         f"version {MODEL_FILE_VERSION}")
    try:
        model = portable_from_arrays(config["model"], arrays)
        params = dict(config["params"])
        fingerprint = config["fingerprint"]
        quantization = _quantization_from_json(config["quantization"])
        schema, names = config["schema"], config["feature_names"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is a damaged skvae model file: {exc}") from None
    unexpected = sorted(set(arrays) - set(model.arrays()))
    if unexpected:
        raise ValueError(f"{path} is a damaged skvae model file: unexpected arrays {unexpected}")
    if model.fingerprint() != fingerprint:
        raise ValueError(f"{path} is a damaged skvae model file: its arrays do not match its fingerprint")
    return model, params, quantization, schema, names
