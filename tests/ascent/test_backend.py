"""The reproducibility contract: what the backend in use promises, and that the switch is read."""

import os
import subprocess
import sys

import pytest

from oipscope.backend import Reproducibility, onednn_enabled, reproducibility


def test_the_contract_names_the_backend_this_process_runs():
    contract = reproducibility()
    assert isinstance(contract, Reproducibility)
    if onednn_enabled():
        assert not contract.exact and contract.backend.startswith("oneDNN") and 0 < contract.atol < 0.01
    elif contract.backend == "GPU":
        assert not contract.exact
    else:
        assert contract.exact and contract.rtol == contract.atol == 0


@pytest.mark.slow
@pytest.mark.parametrize("switch, expected", [("0", "True"), ("1", "False")])
def test_onednn_switch_decides_the_contract(switch, expected):
    code = "from oipscope.backend import reproducibility; print(reproducibility().exact)"
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": switch, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == expected
