"""Per-epoch cost of vanilla vs WSA (old and new defaults) and a per-piece breakdown of a new-default WSA batch."""
import sys, time, numpy as np, torch
torch.set_num_threads(1)
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from _harness import load_dataset
from skvae import VAEDensityEstimator
from skvae.wsa import WSAVAE
name = sys.argv[1]
d = load_dataset(name, "/work/shared/data")
X = d.train[np.random.RandomState(0).choice(len(d.train), 1000, replace=False)] if len(d.train) > 1000 else d.train
net = dict(latent_dim=16, hidden_layer_sizes=(200, 200))
E = 12
v = VAEDensityEstimator(**net, max_epochs=E, random_state=0).fit(X)
tv = np.median(v.history_[:, "dur"])
out = {"vanilla": tv}
variants = {"new default": {}, "old default (n_augment 4, D 2x500 at lr 1e-3, raw weights)":
            dict(n_augment=4, discriminator_hidden_layer_sizes=(500, 500), discriminator_lr=None,
                 self_normalize=False, weight_power=1.0)}
for label, p in variants.items():
    w = WSAVAE(**net, max_epochs=E + 2, warmup_epochs=2, random_state=0, **p).fit(X)
    out[label] = np.median(w.history_[2:, "dur"])
    out[label + " warm-up"] = np.median(w.history_[:2, "dur"])
for k, t in out.items():
    print(f"{name} {k}: {t:.4f} s/epoch, {t / tv:.2f}x vanilla")
# breakdown of one new-default batch
w = WSAVAE(**net, max_epochs=3, warmup_epochs=1, random_state=0).fit(X)
n = w.net_
x = torch.as_tensor(X[:100], dtype=torch.float32)
def timeit(f, reps=200):
    f(); t = time.perf_counter()
    for _ in range(reps): f()
    return (time.perf_counter() - t) / reps * 1e3
fakes = n.draw_fakes(x, 1)
def vae_step():
    n.optimizer_.zero_grad(); l = n.criterion_(n.module_, x); l.backward()
def wsa_vae_step():
    lr, lf = n.discriminator_logits(x, fakes); wts = n.stabilized_weights(lf)
    n.optimizer_.zero_grad(); l = n.wsa_loss(x, fakes, wts); l.backward()
    return lr, lf
def disc():
    lr, lf = n.discriminator_logits(x, fakes); n.discriminator_update(x, lr, lf)
parts = {"vanilla forward+backward (100 rows)": vae_step, "draw 100 fakes": lambda: n.draw_fakes(x, 1),
         "WSA VAE forward+backward (200 rows, one pass) + D forward": wsa_vae_step, "D forward+update": disc}
for k, f in parts.items():
    print(f"{name} ms/batch {k}: {timeit(f):.2f}")
