"""LISTA: unrolling ISTA into a network and learning its matrices (Gregor & LeCun 2010).

Sparse coding ``min_z 1/2 ||D z - y||^2 + lam ||z||_1`` with a random Gaussian
dictionary ``D`` (m = 64 measurements, n = 128 atoms) and data made from
5-sparse codes plus noise. ISTA needs hundreds of iterations; LISTA with 16
layers, initialised exactly as 16 ISTA iterations and then trained on pairs
``(y, z)``, reaches a smaller error in those 16 layers. The figure shows the
mean squared error of the codes against the number of iterations / layers.

Run::

    python examples/lista_sparse_coding.py --out examples_out
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import example_parser, save_figure  # noqa: E402  (also selects the Agg backend)

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from odl_learned.nets import LISTA, ista  # noqa: E402

FIGURE = "lista_sparse_coding.png"
M, N, SPARSITY, LAM = 64, 128, 5, 0.05


def sparse_codes(num: int, generator: torch.Generator) -> torch.Tensor:
    """``num`` codes with ``SPARSITY`` non-zero Gaussian entries each."""
    codes = torch.zeros(num, N)
    support = torch.rand(num, N, generator=generator).argsort(dim=1)[:, :SPARSITY]
    codes.scatter_(1, support, torch.randn(num, SPARSITY, generator=generator))
    return codes


def main(argv=None) -> dict:
    parser = example_parser(__doc__)
    args = parser.parse_args(argv)
    generator = torch.Generator().manual_seed(0)
    dictionary = torch.randn(M, N, generator=generator) / M**0.5
    num_train, steps = (512, 150) if args.quick else (4096, 1500)
    z_train, z_test = sparse_codes(num_train, generator), sparse_codes(256, generator)
    y_train = z_train @ dictionary.T + 0.01 * torch.randn(num_train, M, generator=generator)
    y_test = z_test @ dictionary.T + 0.01 * torch.randn(256, M, generator=generator)

    def error(z):
        return float(((z - z_test) ** 2).sum(dim=1).mean())

    ista_iters = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    ista_errors = [error(ista(dictionary, y_test, LAM, k)) for k in ista_iters]

    torch.manual_seed(0)
    lista = LISTA(dictionary, num_layers=16, lam=LAM, tied=False)
    with torch.no_grad():
        untrained = error(lista(y_test))
    optimizer = torch.optim.Adam(lista.parameters(), lr=3e-4)
    for step in range(steps):
        batch = torch.randint(0, num_train, (64,), generator=generator)
        optimizer.zero_grad()
        loss = ((lista(y_train[batch]) - z_train[batch]) ** 2).sum(dim=1).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lista.parameters(), 1.0)
        optimizer.step()
    with torch.no_grad():
        trained = error(lista(y_test))

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.loglog(ista_iters, ista_errors, "o-", label="ISTA")
    ax.loglog([16], [untrained], "s", label="LISTA, untrained (= 16 ISTA steps)")
    ax.loglog([16], [trained], "*", markersize=12, label="LISTA, trained")
    ax.set_xlabel("iterations / layers")
    ax.set_ylabel("mean squared error of the codes")
    ax.legend(fontsize=8)
    figure = save_figure(fig, args.out, FIGURE)
    print(f"16 ISTA steps: {ista_errors[4]:.4f}; LISTA (16 layers) trained: {trained:.4f}; "
          f"256 ISTA steps: {ista_errors[-1]:.4f}")
    return {"figure": figure, "ista_16": ista_errors[4], "lista_untrained": untrained, "lista": trained, "ista_256": ista_errors[-1]}


if __name__ == "__main__":
    main()
