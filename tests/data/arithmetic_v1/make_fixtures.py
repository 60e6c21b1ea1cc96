"""Writes the arithmetic-version-1 fixtures of tests/test_arithmetic_versions.py with the code of version 1.

Run from a checkout of commit d30a228 (the last of version 1, 2263746^), with that checkout on the path:

    git worktree add -f /tmp/wt_v1 2263746^
    cd /tmp/wt_v1 && OMP_NUM_THREADS=1 PYTHONPATH=/tmp/wt_v1 python /path/to/make_fixtures.py OUTDIR

Writes, per case (binary, table, table_missing): CASE.model.npz (BitsBackCoder.save), CASE.bb (the encoded
file) and the original data: binary.npy; a table as CASE.csv plus CASE.dtypes.json (column dtypes, the
categories of categorical columns). No pickles.
"""

import json
import os
import sys

import numpy as np
import pandas as pd

import skvae
from skvae import BitsBackCoder, VAEDensityEstimator
from skvae.coding._fixed_point import ARITHMETIC_VERSION

assert ARITHMETIC_VERSION == 1, ARITHMETIC_VERSION
assert os.path.dirname(skvae.__file__).startswith(os.getcwd()), skvae.__file__  # the old checkout's code

out = sys.argv[1]
SMALL = dict(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=30, batch_size=100, random_state=0)


def table(n, seed, missing=False):
    rng = np.random.RandomState(seed)
    z = rng.randn(n)
    t = pd.DataFrame({
        "flag": z + 0.3 * rng.randn(n) > 0,
        "color": pd.Categorical(np.where(z > 0.5, "red", np.where(z < -0.5, "blue", "green")),
                                categories=["blue", "green", "red"]),
        "count": np.clip(np.round(40 + 20 * z + 5 * rng.randn(n)), 0, 99).astype(np.int64),
        "size": np.round(1.5 * z + 0.2 * rng.randn(n), 2),
    })
    if missing:
        t["size"] = t["size"].where(rng.rand(n) > 0.2)
    return t


def save_table(name, t):
    t.to_csv(os.path.join(out, f"{name}.csv"), index=False)
    dtypes = {c: str(t[c].dtype) for c in t.columns}
    categories = {c: [str(v) for v in t[c].cat.categories] for c in t.columns if dtypes[c] == "category"}
    with open(os.path.join(out, f"{name}.dtypes.json"), "w") as f:
        json.dump({"dtypes": dtypes, "categories": categories}, f, indent=1)


def write(name, coder, X):
    coder.save(os.path.join(out, f"{name}.model.npz"))
    with open(os.path.join(out, f"{name}.bb"), "wb") as f:
        f.write(coder.encode(X))


rng = np.random.RandomState(0)
X = (rng.rand(300, 12) < np.linspace(0.1, 0.6, 12)).astype(np.uint8)
X[:, 6:] |= X[:, :6]
vae = VAEDensityEstimator(**SMALL).fit(X)
write("binary", BitsBackCoder(vae).fit(), X[:60])
np.save(os.path.join(out, "binary.npy"), X[:60])

for name, missing in (("table", False), ("table_missing", True)):
    train, test = table(400, 0, missing), table(40, 1, missing)
    vae = VAEDensityEstimator(likelihood="auto", **SMALL).fit(train)
    write(name, BitsBackCoder(vae, quantization="auto").fit(), test)
    save_table(name, test)
print(sorted(os.listdir(out)))
