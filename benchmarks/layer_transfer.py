"""Yosinski et al.'s layer-transfer sweep with every knob (see :mod:`transferkit.layer_sweep_bench`).

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/layer_transfer.py --seeds 5 --epochs 7

``transferkit bench layer-transfer`` runs the same with the defaults.
"""

from transferkit.layer_sweep_bench import cli

if __name__ == "__main__":
    cli()
