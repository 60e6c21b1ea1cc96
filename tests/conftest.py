import os
from pathlib import Path

import numpy as np
import pytest
import torch

# Two cores on CI: one torch thread per test process avoids oversubscription.
torch.set_num_threads(1)

DATA_HOME = Path(os.environ.get("SKVAE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def data_home():
    """The shared benchmark data beside the checkout (../shared/data)."""
    if not (DATA_HOME / "twenty_datasets").is_dir():
        pytest.fail(f"shared data not found at {DATA_HOME}; set SKVAE_SHARED_DATA")
    return DATA_HOME


@pytest.fixture(scope="session")
def nltcs(data_home):
    """(train, test) of the real nltcs data set, uint8."""
    folder = data_home / "twenty_datasets" / "nltcs"
    load = lambda split: np.loadtxt(folder / f"nltcs.{split}.data.gz", delimiter=",", dtype=np.uint8, ndmin=2)
    return load("ts"), load("test")
