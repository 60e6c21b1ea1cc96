"""Loaders of the standard binary density-estimation benchmarks.

Files already present in ``data_home`` are used as they are; a missing file
is downloaded from its public source into ``data_home`` with a SHA-256 check
(written to a temporary file first and renamed only once verified, so a
failed download never leaves a half-written file behind).
"""

import contextlib
import gzip
import hashlib
import io
import os
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = [
    "DEBD_NAMES",
    "get_data_home",
    "load_debd",
    "load_caltech_silhouettes",
    "load_binarized_mnist",
]

SPLITS = ("train", "valid", "test")

# Same order as the usual results tables (Lowd & Davis 2010, Van Haaren & Davis 2012).
DEBD_NAMES = (
    "nltcs", "msnbc", "kdd", "plants", "baudio", "jester", "bnetflix", "accidents", "tretail", "pumsb_star",
    "dna", "kosarek", "msweb", "book", "tmovie", "cwebkb", "cr52", "c20ng", "bbc", "ad",
)  # fmt: skip

_DEBD_N_FEATURES = dict(zip(DEBD_NAMES, (
    16, 17, 64, 69, 100, 100, 100, 111, 135, 163, 180, 190, 294, 500, 500, 839, 889, 910, 1058, 1556,
)))  # fmt: skip

_DEBD_TITLES = dict(zip(DEBD_NAMES, (
    "NLTCS", "MSNBC", "KDDCup 2000", "Plants", "Audio", "Jester", "Netflix", "Accidents", "Retail",
    "Pumsb-star", "DNA", "Kosarek", "MSWeb", "Book", "EachMovie", "WebKB", "Reuters-52", "20 Newsgroups",
    "BBC", "Ad",
)))  # fmt: skip


@dataclass(frozen=True)
class RemoteFile:
    """A downloadable file: its URL and the SHA-256 of its bytes (None: unknown)."""

    url: str
    sha256: str | None


# The DEBD files at a pinned commit of UCLA-StarAI/Density-Estimation-Datasets (a fork of
# arranger1044/DEBD). The checksums are those of the gunzipped files in ../shared/data, which were
# checked there to have the same git blob SHA-1 as the files at this commit, i.e. the same bytes.
_DEBD_COMMIT = "37d53c1a8ba488d0a39e8c64bd3387577080b143"
_DEBD_URL = (
    "https://raw.githubusercontent.com/UCLA-StarAI/Density-Estimation-Datasets/"
    f"{_DEBD_COMMIT}/datasets/{{name}}/{{name}}.{{split}}.data"
)
# name -> sha256 of (train, valid, test)
_DEBD_SHA256 = {
    "nltcs": (
        "e547a7aedad1dd2f7177030881ab1b92c7e24ae5464c71a0f1f89daecaf52b30",
        "93bbbf5c6febdc9bc6e5b5bfab636f4dc0685ab2896d24b23dd267794c3bfcf6",
        "f9ffa6b74b27dc03bee3203d157ee31079e80b13be40d0c0093d635c25aed523",
    ),
    "msnbc": (
        "92b1f4ed42ef87dafd6fe57c2e5c3b3dbc565157d2bc994a9b423898cd656e5e",
        "b937466c3e09b956b271438b2ff45ca4dc8b91890c9de6d02e486b0e22bf4e27",
        "60ff71cc017cfde0bd84f0cd383ccd29065f5c06a64404b77d28c4b26aa1aca5",
    ),
    "kdd": (
        "8d26e8e5baf164df3315bf33861e53052457200a9a57834eae027d84c6e28c12",
        "582aae9cf84785758869328d44295428395c53e5a091855ca0bf141a53c70765",
        "5cc76212353d13ffc98574c29c14b4b7b7363081acc3a76214e5ff2a5baa79b2",
    ),
    "plants": (
        "1fb1219ff94068d12a563f9e81f8889a1885f41e867884cff608669300c6848f",
        "47834ed318b2d74f48e4b083226ef47fd446d41986012ceae19d230574821b34",
        "95f53c033cd1d86467aec2610dc5bfe014534206c2da4919f73bcab246ab8755",
    ),
    "baudio": (
        "b1ec73f4aa9d4ce48b465ded865cc3d22b3f68cf6258f9e15fbef8902138add1",
        "7164d8a4943f74953f0e982002d84693fdf483e17f69e7407dc939c5ce5622fe",
        "1474f3206f1f35e099803a0f40b0cd209bdc8d787825095ef6cb23fd87ed0d05",
    ),
    "jester": (
        "dd93578c3359d5b234bb278bf0901c5215d83b910f7d51d7c91951a0a4c244cd",
        "91df833941e189265345898d3f63211560c2456df599f34beee8e95381ee7524",
        "346044fb561cf18f284f7e9d5896178b03048991b6ebb6f7482885fccbc16082",
    ),
    "bnetflix": (
        "73c87cf0635ec734cc0726a5c644b904ff33e81ea51f1049db0e77b787ebad7c",
        "7f0a3e597c6f305f707f9ecd2b2aa523c576cdb17fdc5d902fc832ebea5163de",
        "af73990782fd2f146d96059855c4f3bbb6a7a7caefc417ff620a3ed1415a2395",
    ),
    "accidents": (
        "a76648cf00772c275b4277b21d858e235e3c6d3c5ef30beeb4958189b6bed21c",
        "fd3a80a0f411f157cf3772a057d26980bb166cb89b10cafb818a53f1ec30d46d",
        "df3f1b6c035bf3e306a7d7127320e479d2546ce14a5d6d3043e6be0925b8b414",
    ),
    "tretail": (
        "f85cbbde32672c029ff3c53b44e81bb29a6843cb50f962d2ae0b7326da9d7df0",
        "69024b394252f491a518ca93e164029fdae7d8c8eae7105739e8ab517b62e418",
        "474ffe4b10b213c0539a95d070955c35f042eb80d5a6198f7fca849cae28b378",
    ),
    "pumsb_star": (
        "27e610b5f9f507f94ebf8a227f8b96cc59d7eed51e06ee5d2fe8353afbc1524c",
        "6a491d1ea64eb0249dddd168fdddeef88aa21001a933eb7309603b6466187af8",
        "b2da195314ac17f9d8d171743c5f98a28ea9583332a52d34aa228ff2e11aa8e7",
    ),
    "dna": (
        "bb8de0ca4b6ad9b610036b7a302962ebecd4b504354b14c02c7d0bee48d207d9",
        "4b0fc89cda5eaf5c75926e281afb6af99de194a546070d5b81b524ba251f4f3f",
        "fec3ae7b26804020a9c43c99828441c5e08bb76b23719368a74ad2b09af99100",
    ),
    "kosarek": (
        "31ca93de99cf823c22fb207a81043834c887e52b71d86c586a4939be16a2206a",
        "5a4a5edc60b9c30a76b44fdc2978e976fec49c1544e850fe72a73ee60f760aa4",
        "c54cb99ae56399e26005daba5d56d92d215f73fbb46ce75b9a919690b2990225",
    ),
    "msweb": (
        "dc70b036c0af1822f39e12d4bfdb9a67dcfa23da40fbae4dbd7f83becf0b7a5b",
        "a317cd9261dfa29982f0b8663943292773f6c31220d06071e9165c7c9eca13f5",
        "a4f071037f0734618695bc8428e8d8ffefc03e52ff97f37e17c928fc964819ff",
    ),
    "book": (
        "e2458d1db3b9f2ad74a4034dee19c72213d20bd246a51750ef728041e130b6a7",
        "a111d7a024f88b062c60431306ad521dec64ec6cc2a2bca10503da647d1f0aaf",
        "94e7ec33fe7a84b4a92f248d8f0c0e35143f3cd56f5a609f4311c38218e420b9",
    ),
    "tmovie": (
        "f76927e1b763487af99baa07e8de8e4641595cbdd57eb2ccddfff2ce5c33cb59",
        "5162bf6ba0cd3d94d5107a48f7a3be4c6f0ca2cc99ef9a2273fa5bb1787cf257",
        "805e27d91fb2bff00d0183a3e941721bf93050efdd45b77ffd79d4bb906168d6",
    ),
    "cwebkb": (
        "d5c73fba414b6bfeb483781fa353220e5b94456e3c661aa14cc8094a35aaca55",
        "1ab1f1abe7b20a4d78009eaaf64a78f5798a82a7823b8b3368abca4c16398a9e",
        "d84dddffec11d4dc80f90afa3160fe8d54311de8a368383708123087f39f8ac4",
    ),
    "cr52": (
        "fa334e35e419301883463bb42043f54d814d1865d90dd92eef09f997efab8095",
        "9dbb0c6537b4ba3ee5316425dadf4b9e29c36b74e4ccfef28728f2d33a5c0e96",
        "758a2ec314962c902dcc57562b92d98317b1f662b8eb1e529a0aa3b67a20c5d4",
    ),
    "c20ng": (
        "918fef27a3a6d382f1af3713a81a8465c63d56339a26e183d22b682b18ef8dd3",
        "be357eab542b402197548801af1511e51f6435f29c069f39e09ca5763db03bef",
        "534d7675128740ea820e9ce2be84ed0f52e670b8224ce9c83a4a22492e60ec8c",
    ),
    "bbc": (
        "a6f0ba467ebf502ba3b37caa1f20e43ff82664dcd580be92010106cf80fb0db1",
        "f6a37bd58cdb6745725628be19dfd3b9b795082faa8ca771b8f27dbf4a5ff46d",
        "7116fce92a1f3d610cee673a974c8c9895957ee07ce6f086b431ee296aa7734a",
    ),
    "ad": (
        "045d428f4d16f11adc165c0bd6e3d148236890385fd2c1283678d4eb12a88fd6",
        "409f039d6d4c859b5b00a45407560cf634321556390e39d9cd481f4cb69401d4",
        "230c3d09c21b36144185c04cb89d3b21090670561778f766721165bb7d9cca97",
    ),
}

# Caltech-101 Silhouettes from B. Marlin's page. The checksum is that of the copy in ../shared/data
# (extracted from arranger1044/spyn-repr, md5 4483e9c14b188fd09937f9ea6f9ea777); it could not be
# compared with the file on Marlin's server from this machine (no internet). If that server's file
# differs, the download fails loudly rather than loading something unverified.
_SILHOUETTES_FILE = "caltech101_silhouettes_28_split1"
_SILHOUETTES_URL = f"https://people.cs.umass.edu/~marlin/data/{_SILHOUETTES_FILE}.mat"
_SILHOUETTES_SHA256 = "eb6735e8d84b1850fabc5590124aab1755e90c9fd28123585324398405e1e42a"

# Statically binarized MNIST of Larochelle & Murray (2011), at the URLs used by yburda/iwae and most
# VAE code. No copy was reachable to compute checksums from, so they are unknown (None): a download is
# then only checked by parsing (784 binary columns) and a warning says so.
_MNIST_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/binarized_mnist_{split}.amat"

# Every file a loader may download, keyed by where it lands, relative to data_home ("/"-separated).
# Tests point entries at local files by monkeypatching this dict.
REMOTE = {}
for _name in DEBD_NAMES:
    for _split, _sha in zip(SPLITS, _DEBD_SHA256[_name]):
        REMOTE[f"twenty_datasets/{_name}/{_name}.{_split}.data"] = RemoteFile(
            _DEBD_URL.format(name=_name, split=_split), _sha
        )
REMOTE[f"caltech101_silhouettes/{_SILHOUETTES_FILE}.mat"] = RemoteFile(_SILHOUETTES_URL, _SILHOUETTES_SHA256)
for _split in SPLITS:
    REMOTE[f"binarized_mnist/binarized_mnist_{_split}.amat"] = RemoteFile(_MNIST_URL.format(split=_split), None)
del _name, _split, _sha

_TIMEOUT = 60  # seconds without data before a download is abandoned


def get_data_home(data_home=None):
    """Folder where the data sets are looked for and downloaded to.

    The argument if given, else the ``SKVAE_DATA`` environment variable, else
    ``~/skvae_data``. ``~`` is expanded. The folder is not created here; a
    download creates what it needs.

    Parameters
    ----------
    data_home : str or path-like, default=None

    Returns
    -------
    str

    Examples
    --------
    >>> from skvae.datasets import get_data_home
    >>> get_data_home("/tmp/my_data")
    '/tmp/my_data'
    """
    if data_home is None:
        data_home = os.environ.get("SKVAE_DATA") or os.path.join("~", "skvae_data")
    return os.path.expanduser(os.fspath(data_home))


def _check_split(split):
    if split is None:
        return SPLITS
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"split must be None or one of {SPLITS}, got {split!r}")
    return (split,)


def _fetch(key, data_home):
    """Download REMOTE[key] to data_home/key, verified, atomically; return the path."""
    remote = REMOTE[key]
    target = Path(data_home).joinpath(*key.split("/"))
    hint = f"or put the file there by hand (from {remote.url}, or set SKVAE_DATA to a folder holding it)"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise OSError(f"cannot write to data_home {data_home!s} to download {remote.url}: {exc}") from exc
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(remote.url, timeout=_TIMEOUT) as response:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except OSError as exc:  # URLError, HTTPError and socket timeouts are all OSErrors
                raise OSError(
                    f"could not download {remote.url} into data_home {data_home!s} ({exc}); "
                    f"check the internet connection, {hint}"
                ) from exc
        if remote.sha256 is not None and digest.hexdigest() != remote.sha256:
            raise OSError(
                f"checksum mismatch for {remote.url}: expected sha256 {remote.sha256}, got "
                f"{digest.hexdigest()}; nothing was saved in data_home {data_home!s}"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if remote.sha256 is None:
        warnings.warn(
            f"downloaded {remote.url} without a checksum to verify it against (none is known); "
            "it is only checked by parsing",
            UserWarning,
            stacklevel=3,
        )
    return target


def _find_or_fetch(candidates, key, data_home, download_if_missing):
    """First existing candidate path, else the downloaded file. Returns (path, downloaded)."""
    for path in candidates:
        if path.is_file():
            return path, False
    if not download_if_missing:
        looked = ", ".join(str(p) for p in candidates)
        raise OSError(f"data not found in data_home {data_home!s} (looked for {looked}) and download_if_missing=False")
    return _fetch(key, data_home), True


def _parse_fast(raw, sep):
    """Rows of single 0/1 digits separated by one `sep` byte; None if the layout differs."""
    raw = raw.replace(b"\r\n", b"\n")
    if not raw.endswith(b"\n"):
        raw += b"\n"
    width = raw.find(b"\n") + 1
    if width < 2 or width % 2 or len(raw) % width:
        return None
    grid = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width)
    if not ((grid[:, 1:-1:2] == ord(sep)).all() and (grid[:, -1] == ord("\n")).all()):
        return None
    X = grid[:, 0:-1:2] - np.uint8(ord("0"))  # '0'/'1' -> 0/1; other bytes wrap to > 1
    return np.ascontiguousarray(X) if X.size and X.max() <= 1 else None


def _read_binary_text(path, sep, n_features):
    """Read a text matrix of 0/1 values into uint8, checking its values and width."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    X = _parse_fast(raw, sep)
    if X is None:  # slow, general path: any whitespace, multi-digit values, ...
        try:
            X = np.loadtxt(io.BytesIO(raw), delimiter=None if sep == " " else sep, dtype=np.int64, ndmin=2)
        except ValueError as exc:
            raise ValueError(f"{path} is not a text matrix of 0/1 values separated by {sep!r}: {exc}") from exc
        if X.size == 0 or not np.isin(X, (0, 1)).all():
            raise ValueError(f"{path} holds values other than 0 and 1 (or no rows)")
        X = X.astype(np.uint8)
    if X.shape[1] != n_features:
        raise ValueError(f"{path} has {X.shape[1]} columns, expected {n_features}")
    return X


def _load_file(reader, path, downloaded):
    """Run reader(path); a download that does not parse is removed so the next call retries."""
    try:
        return reader(path)
    except (ValueError, KeyError, OSError):
        if downloaded:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        raise


_DEBD_DESCR = """\
{title} (``{name}``), one of the twenty binary density-estimation data sets
(DEBD: Lowd & Davis, ICDM 2010; Van Haaren & Davis, AAAI 2012), with its
fixed train/valid/test split: {n_train} / {n_valid} / {n_test} rows of {n_features}
binary variables (uint8, 0/1).

Use the train split to fit, the valid split only for early stopping or model
choice, and report the mean test log-likelihood in nats per row.

Quirks of the twenty data sets (all checked on the files):
- kdd has 64 columns (the DEBD README says 65; files and literature use 64).
- tmovie's train split has 4524 rows (the DEBD README says 4525).
- c20ng's valid split is much easier than its test split (Chow-Liu: -129.4
  valid vs -164.1 test nats): valid log-likelihood is no proxy for test there.
- Many train rows are duplicates (unique fraction: msnbc 0.03, kdd 0.04,
  nltcs 0.17, kosarek 0.34, msweb 0.35, plants 0.47, tretail 0.48); 72 % of
  kdd's train rows are all zero.
- Some columns are constant in train (msweb 11, tmovie 3, plants 1,
  accidents 1): a maximum-likelihood model gives them probability 0 or 1 and
  can hit log(0) on valid/test, so smooth or clamp.
- ad and pumsb_star have many near-deterministic columns.
No data license is stated by the distributors; the data derive from
third-party sources. Cite the two papers above.
"""


def load_debd(name, data_home=None, split=None, download_if_missing=True):
    """Load one of the twenty binary density-estimation data sets (DEBD).

    Looks in ``data_home`` for, in this order, the gzipped files
    ``twenty_datasets/<name>/<name>.{ts,valid,test}.data.gz``, the plain DEBD
    files ``twenty_datasets/<name>/<name>.{train,valid,test}.data``, and both
    namings directly under ``<name>/``. A missing split is downloaded from the
    DEBD GitHub repository (pinned commit, SHA-256 checked) into
    ``twenty_datasets/<name>/``.

    Parameters
    ----------
    name : str
        One of :data:`DEBD_NAMES` (``'nltcs'``, ..., ``'ad'``).
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    split : {'train', 'valid', 'test'} or None, default=None
        None returns all three splits in a Bunch; a split name returns only
        that array.
    download_if_missing : bool, default=True
        If False, a missing file raises OSError instead of being downloaded.

    Returns
    -------
    data : Bunch or ndarray of shape (n_rows, n_features), dtype uint8
        The Bunch has ``train``, ``valid``, ``test`` (uint8 0/1 arrays),
        ``name``, ``n_features``, ``filenames`` (split -> path) and ``DESCR``
        (which lists the known quirks of the files).

    Raises
    ------
    ValueError
        Unknown name or split, or a file that is not a 0/1 matrix of the
        expected width.
    OSError
        A missing file that cannot be downloaded (offline, checksum mismatch,
        or ``download_if_missing=False``).

    Examples
    --------
    >>> from skvae.datasets import load_debd
    >>> data = load_debd("nltcs")  # doctest: +SKIP
    >>> data.train.shape, data.test.shape  # doctest: +SKIP
    ((16181, 16), (3236, 16))
    """
    if not isinstance(name, str) or name not in DEBD_NAMES:
        raise ValueError(f"unknown DEBD data set {name!r}; valid names are: {', '.join(DEBD_NAMES)}")
    splits = _check_split(split)
    data_home = get_data_home(data_home)
    n_features = _DEBD_N_FEATURES[name]
    arrays, filenames = {}, {}
    for s in splits:
        stems = [f"{name}.{s}"] if s != "train" else [f"{name}.ts", f"{name}.train"]
        candidates = [
            Path(data_home, folder, stem + ext)
            for folder in (f"twenty_datasets/{name}", name)
            for ext in (".data.gz", ".data")
            for stem in stems
        ]
        key = f"twenty_datasets/{name}/{name}.{s}.data"
        path, downloaded = _find_or_fetch(candidates, key, data_home, download_if_missing)
        arrays[s] = _load_file(lambda p: _read_binary_text(p, ",", n_features), path, downloaded)
        filenames[s] = str(path)
    if split is not None:
        return arrays[split]
    descr = _DEBD_DESCR.format(
        title=_DEBD_TITLES[name], name=name, n_features=n_features,
        n_train=len(arrays["train"]), n_valid=len(arrays["valid"]), n_test=len(arrays["test"]),
    )  # fmt: skip
    return Bunch(**arrays, name=name, n_features=n_features, filenames=filenames, DESCR=descr)


_SILHOUETTES_DESCR = """\
Caltech-101 Silhouettes, 28x28, split 1 (Marlin, Swersky, Chen & de Freitas,
AISTATS 2010; built from Caltech-101, Fei-Fei, Fergus & Perona 2004):
{n_train} / {n_valid} / {n_test} binary images of 784 pixels (uint8), labels in
1..101 (``classnames[label - 1]`` names the class).

Pixel convention, kept as stored in the original file: each row is an image in
column-major order (``x.reshape(28, 28, order="F")`` is upright) and the
OBJECT IS 0, the background 1 (train mean 0.55). VampPrior / Sylvester-flow
code uses ``1 - x`` (object = 1); this changes no log-likelihood of a model
that is fitted to the flipped data, but state the convention when comparing
architectures. No license is stated by the distributor; cite Marlin et al.
"""


def _silhouettes_npz(path):
    with np.load(path) as z:
        out = {s: np.unpackbits(z[f"{s}_packed"], axis=1, count=784) for s in SPLITS}
        out.update({f"{s}_labels": z[f"{s}_labels"].astype(np.int16) for s in SPLITS})
        out["classnames"] = z["classnames"].astype(str)
    return out


def _silhouettes_mat(path):
    from scipy.io import loadmat

    mat = loadmat(path)
    stored = {"train": "train", "valid": "val", "test": "test"}
    out = {s: np.asarray(mat[f"{k}_data"], dtype=np.uint8) for s, k in stored.items()}
    out.update({f"{s}_labels": mat[f"{k}_labels"].ravel().astype(np.int16) for s, k in stored.items()})
    out["classnames"] = np.array([str(c[0]) if c.size else "" for c in mat["classnames"].ravel()])
    for s in SPLITS:
        if out[s].ndim != 2 or out[s].shape[1] != 784 or out[s].max(initial=0) > 1:
            raise ValueError(f"{path}: {s} split is not a 0/1 matrix with 784 columns")
    return out


def load_caltech_silhouettes(data_home=None, split=None, download_if_missing=True):
    """Load Caltech-101 Silhouettes 28x28 (split 1) as binary uint8 arrays.

    Reads ``caltech101_silhouettes/caltech101_silhouettes_28_split1.npz``
    (bit-packed rows, ``np.unpackbits(..., count=784)``) when present in
    ``data_home``, else the original ``.mat`` of the same name; ``data_home``
    may also be the folder that holds either file. When none is there,
    downloads the ``.mat`` from B. Marlin's page (SHA-256 checked).

    Pixels are kept as stored: column-major rows, object = 0, background = 1
    (see ``DESCR``).

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    split : {'train', 'valid', 'test'} or None, default=None
        None returns a Bunch; a split name returns only that image array.
    download_if_missing : bool, default=True

    Returns
    -------
    data : Bunch or ndarray of shape (n_rows, 784), dtype uint8
        The Bunch has ``train`` (4100 rows), ``valid`` (2264), ``test``
        (2307), ``train_labels``/``valid_labels``/``test_labels`` (int16 in
        1..101), ``classnames``, ``n_features`` (784), ``image_shape``
        ((28, 28)), ``filename`` and ``DESCR``.

    Examples
    --------
    >>> from skvae.datasets import load_caltech_silhouettes
    >>> X = load_caltech_silhouettes(split="test")  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (2307, 784)
    """
    splits = _check_split(split)
    data_home = get_data_home(data_home)
    folder = Path(data_home, "caltech101_silhouettes")
    # the usual layout, then data_home being the folder that holds the file itself
    candidates = [place / f"{_SILHOUETTES_FILE}{suffix}" for place in (folder, Path(data_home))
                  for suffix in (".npz", ".mat")]
    key = f"caltech101_silhouettes/{_SILHOUETTES_FILE}.mat"
    path, downloaded = _find_or_fetch(candidates, key, data_home, download_if_missing)
    reader = _silhouettes_npz if path.suffix == ".npz" else _silhouettes_mat
    data = _load_file(reader, path, downloaded)
    if split is not None:
        return data[splits[0]]
    descr = _SILHOUETTES_DESCR.format(n_train=len(data["train"]), n_valid=len(data["valid"]), n_test=len(data["test"]))
    return Bunch(
        **data, n_features=784, image_shape=(28, 28), name="caltech101_silhouettes", filename=str(path), DESCR=descr
    )


_MNIST_DESCR = """\
Statically binarized MNIST (Larochelle & Murray, AISTATS 2011): one fixed
random binarization of the MNIST digits, {n_train} / {n_valid} / {n_test}
rows of 784 pixels (uint8, 0/1), row-major 28x28 images, ink = 1, no labels.
The binarization is a fixed sample and cannot be regenerated from MNIST.
Results on dynamically binarized MNIST (e.g. the IWAE paper's) are not
comparable: models trained on this fixed set overfit and score about 2 nats
worse.
"""


def load_binarized_mnist(data_home=None, split=None, download_if_missing=True):
    """Load the statically binarized MNIST of Larochelle & Murray (2011).

    Reads ``binarized_mnist/binarized_mnist_{train,valid,test}.amat``
    (space-separated 0/1 text, as distributed) from ``data_home``, or the same
    files directly in ``data_home``; a missing file is downloaded from the
    University of Toronto URL used by most VAE code. No checksum of these
    files is known, so a download is checked only by parsing (and a warning
    says so).

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    split : {'train', 'valid', 'test'} or None, default=None
        None returns a Bunch; a split name returns only that array.
    download_if_missing : bool, default=True

    Returns
    -------
    data : Bunch or ndarray of shape (n_rows, 784), dtype uint8
        The Bunch has ``train`` (50000 rows), ``valid`` (10000), ``test``
        (10000), ``n_features``, ``image_shape``, ``filenames`` and ``DESCR``.

    Examples
    --------
    >>> from skvae.datasets import load_binarized_mnist
    >>> X = load_binarized_mnist(split="test")  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (10000, 784)
    """
    splits = _check_split(split)
    data_home = get_data_home(data_home)
    arrays, filenames = {}, {}
    for s in splits:
        fname = f"binarized_mnist_{s}.amat"
        candidates = [Path(data_home, "binarized_mnist", fname), Path(data_home, fname)]
        path, downloaded = _find_or_fetch(candidates, f"binarized_mnist/{fname}", data_home, download_if_missing)
        arrays[s] = _load_file(lambda p: _read_binary_text(p, " ", 784), path, downloaded)
        filenames[s] = str(path)
    if split is not None:
        return arrays[split]
    descr = _MNIST_DESCR.format(n_train=len(arrays["train"]), n_valid=len(arrays["valid"]), n_test=len(arrays["test"]))
    return Bunch(
        **arrays, n_features=784, image_shape=(28, 28), name="binarized_mnist", filenames=filenames, DESCR=descr
    )
