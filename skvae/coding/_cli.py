"""Command line: ``skvae compress`` and ``skvae decompress``.

:func:`add_subcommands` adds both to an ``argparse`` sub-parser set; each
sets ``func``, a callable taking the parsed arguments and returning the exit
status (0, or 1 after printing a one-line error for bad input). The ``skvae``
command (:mod:`skvae.cli`) hosts them::

    skvae export-model model.joblib model.npz    # once, where the model was fitted
    skvae compress model.npz data.npy data.bb
    skvae decompress model.npz data.bb back.npy  # on any machine

A model given as a portable ``.npz`` file (:meth:`BitsBackCoder.save`) is
read without executing anything from it; a joblib file is a pickle, which runs
code when loaded, so it is accepted only as a trusted local file.
"""

import contextlib
import functools
import mmap
import os
import signal
import sys
import tempfile
import threading

import numpy as np

__all__ = ["add_subcommands"]

_MODEL_HELP = ("portable model file written by BitsBackCoder.save or 'skvae export-model' (.npz, no pickle: safe to "
               "load from anyone), or a joblib file holding a fitted skvae estimator or BitsBackCoder (a pickle, which "
               "executes code when loaded: only use your own files)")


def add_subcommands(subparsers):
    """Add the ``compress`` and ``decompress`` sub-commands to ``subparsers``."""
    p = subparsers.add_parser(
        "compress", help="losslessly compress a 0/1 array with a fitted model (bits-back coding)",
        description="Compress a 2-D 0/1 array (.npy, or comma-separated text such as .csv / .data / .gz) "
                    "with bits-back ANS coding under a fitted skvae model.")
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument("input", help=".npy file (read as a memmap, chunk by chunk) or comma-separated text")
    p.add_argument("output", help="compressed file to write")
    p.add_argument("--dtype", default=None,
                   help="dtype of headerless text input (default: the model's array dtype, else uint8); .npy keeps "
                        "its own; a model fitted on a DataFrame reads a CSV with a header and the model's column "
                        "types")
    p.add_argument("--chunk-size", type=int, default=None, help="rows per independent chunk")
    p.add_argument("--n-jobs", type=int, default=None, help="chunks coded in parallel (output is identical)")
    p.add_argument("--n-particles", type=int, default=None,
                   help="importance samples per row (Monte-Carlo bits-back, BB-IS): k > 1 codes toward the IWAE_k "
                        "bound instead of the ELBO, about k times slower; default: the model's (1 unless saved "
                        "otherwise). Decompressing reads k from the file")
    p.set_defaults(func=functools.partial(_guarded, _compress, "compress"))

    p = subparsers.add_parser(
        "decompress", help="restore an array compressed by 'skvae compress'",
        description="Decompress a file written by 'skvae compress'. The model must be the one that "
                    "compressed it (checked by fingerprint); the array's dtype and shape come from the file.")
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument("input", help="compressed file")
    p.add_argument("output", help=".npy (any dtype, written as a memmap) or .csv / .txt (integers as text)")
    p.add_argument("--n-jobs", type=int, default=None, help="chunks decoded in parallel")
    p.set_defaults(func=functools.partial(_guarded, _decompress, "decompress"))

    p = subparsers.add_parser(
        "export-model", help="write the portable, pickle-free model file of a joblib model",
        description="Read a fitted skvae estimator or BitsBackCoder from a joblib file (a pickle: only your own "
                    "files) and write the portable model file that compress and decompress read on any machine.")
    p.add_argument("model", help="joblib file holding a fitted skvae estimator or BitsBackCoder")
    p.add_argument("output", help="model file to write (.npz)")
    p.set_defaults(func=functools.partial(_guarded, _export_model, "export-model"))


def _is_model_file(path):
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"  # a zip archive: the .npz model file


def _load_coder(path, **params):
    from ._coder import BitsBackCoder

    params = {k: v for k, v in params.items() if v is not None}
    if _is_model_file(path):
        return BitsBackCoder.load(path).set_params(**params)
    import joblib

    try:
        obj = joblib.load(path)
    except OSError:
        raise
    except Exception as exc:  # anything unpickling can raise on a foreign or damaged file
        raise ValueError(f"{path} is neither a skvae model file (.npz) nor a readable joblib file "
                         f"({type(exc).__name__}: {exc})") from None
    if isinstance(obj, BitsBackCoder):
        if not hasattr(obj, "model_"):
            raise ValueError(f"{path} holds an unfitted BitsBackCoder")
        return obj.set_params(**params)
    return BitsBackCoder(obj, **params).fit()


def _export_model(args):
    if _is_model_file(args.model):
        raise ValueError(f"{args.model} is already a portable model file")
    _load_coder(args.model).save(args.output)
    print(f"{args.model} -> {args.output}")
    return 0


def _read_input(path, dtype, coder):
    if path.endswith(".npy"):
        return np.load(path, mmap_mode="r")
    schema = coder.schema_
    if schema is not None and schema.from_frame:
        return _read_table(path, schema)
    if dtype is None:
        dtype = schema.array_dtype if schema is not None and schema.array_dtype is not None else np.uint8
    return np.loadtxt(path, delimiter=",", dtype=np.dtype(dtype), ndmin=2)


def _read_table(path, schema):
    """A CSV file with a header as a DataFrame in the schema's column types."""
    import pandas as pd

    names = schema.column_names()
    header = list(pd.read_csv(path, nrows=0).columns)
    if header != [str(name) for name in names]:
        raise ValueError(f"{path} has the columns {header}; the model was fitted on {names} (in this order)")
    table = pd.read_csv(path, dtype=object, keep_default_na=True)
    table.columns = names
    for col in schema.columns:
        values = table[col.name]
        try:
            if col.kind == "categorical":
                # categories read back as the type they were fitted with (a CSV holds only text)
                by_text = {str(c): c for c in col.categories}
                values = values.map(lambda v: by_text.get(v, v) if isinstance(v, str) else v)
                table[col.name] = pd.Categorical(values, dtype=col.dtype) \
                    if isinstance(col.dtype, pd.CategoricalDtype) else values
            else:
                numbers = pd.to_numeric(values)
                table[col.name] = numbers.astype(col.dtype) if col.dtype is not None else numbers
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column {col.name!r} of {path} does not read as {col.dtype}: {exc}") from None
    return table


def _check_paths(args):
    """Refuse an output that is the input or the model (writing it would destroy what is being read)."""
    for name in ("input", "model"):
        source = getattr(args, name)
        if os.path.exists(args.output) and os.path.exists(source) and os.path.samefile(source, args.output):
            raise ValueError(f"the output {args.output} is the {name}; choose another output path")


def _compress(args):
    _check_paths(args)
    coder = _load_coder(args.model, chunk_size=args.chunk_size, n_jobs=args.n_jobs, n_particles=args.n_particles)
    X = _read_input(args.input, args.dtype, coder)
    with _output(args.output, "wb") as f:
        coder._write(X, f)
    size = os.path.getsize(args.output)
    print(f"{args.input}: {X.shape[0]} x {X.shape[1]} -> {size} bytes "
          f"({8 * size / max(X.size, 1):.4f} bits per entry)")
    return 0


def _decompress(args):
    _check_paths(args)
    coder = _load_coder(args.model, n_jobs=args.n_jobs)
    with open(args.input, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise ValueError(f"{args.input} is empty")
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        if coder.schema_ is not None:  # a table: decoded to its values and types in memory
            _write_table(coder.decode(data), args.output)
        elif args.output.endswith(".npy"):
            with _atomic_path(args.output) as temporary:
                def allocate(shape, dtype):
                    return np.lib.format.open_memmap(temporary, mode="w+", dtype=dtype, shape=shape)
                out = coder._read(data, out=allocate)
                out.flush()
                del out
        else:
            X = coder._read(data)
            fmt = "%.17g" if X.dtype.kind == "f" else "%d"
            with _output(args.output, "w") as f:
                np.savetxt(f, X.astype(np.int64) if X.dtype.kind == "b" else X, fmt=fmt, delimiter=",")
    finally:
        try:
            data.close()
        except BufferError:  # views into the map still live in a traceback; closed when collected
            pass
    print(f"{args.input} -> {args.output}")
    return 0


def _write_table(X, path):
    """A decoded table: a DataFrame as CSV with a header; an array as .npy or headerless text."""
    if hasattr(X, "to_csv"):
        if path.endswith(".npy"):
            raise ValueError(f"the file holds a table with named columns; write it to a .csv file, not {path}")
        with _output(path, "w") as f:
            X.to_csv(f, index=False, lineterminator="\n")
    elif path.endswith(".npy"):
        with _output(path, "wb") as f:
            np.save(f, X)
    else:
        fmt = "%.17g" if X.dtype.kind == "f" else "%d" if X.dtype.kind in "biu" else "%s"
        with _output(path, "w") as f:
            np.savetxt(f, X.astype(np.int64) if X.dtype.kind == "b" else X, fmt=fmt, delimiter=",")


@contextlib.contextmanager
def _atomic_path(path):
    """A temporary path beside ``path`` that replaces it only if the block succeeds.

    The file is synced before the rename, so ``path`` holds either its old
    contents or the complete new file, whatever happens (an error, Ctrl-C,
    SIGTERM); the temporary file is removed on failure.
    """
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part",
                                         dir=os.path.dirname(os.path.abspath(path)))
    os.close(handle)
    try:
        yield temporary
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would make the result private
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


@contextlib.contextmanager
def _output(path, mode):
    """A file opened for writing whose contents replace ``path`` only when the block succeeds."""
    with _atomic_path(path) as temporary, open(temporary, mode) as f:
        yield f


@contextlib.contextmanager
def _terminate_as_exit():
    """SIGTERM raises SystemExit while a command runs, so its temporary files are cleaned up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _guarded(command, name, args):
    """Run a sub-command; bad input becomes a one-line message and exit status 1."""
    try:
        with _terminate_as_exit():
            return command(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"skvae {name}: error: {exc}", file=sys.stderr)
        return 1
