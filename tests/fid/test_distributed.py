"""``inception-core fid`` under torchrun with 2 gloo processes on the CPU: files split over the ranks, the
statistics (and KID's features, in file order) reduced, the same FID and KID as one process."""

import os
import re
import socket
import subprocess
import sys

import torch
from fid_helpers import SMALL, write_pngs

from inception_core.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_equal_one(tmp_path, fidelity_weights_file, capsys):
    a = os.path.dirname(write_pngs(tmp_path / "a", 11, size=(16, 16), seed=1)[0])  # odd: ranks get 6 and 5
    b = os.path.dirname(write_pngs(tmp_path / "b", 9, size=(16, 16), seed=2, shift=0.4)[0])
    args = ["fid", a, b, "--dims", "64", "--kid", "--kid-subset-size", "5", "--weights", fidelity_weights_file,
            "--device", "cpu", "--workers", "0", "--image-size", str(SMALL), "--batch-size", "4"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun process below: oneDNN's reduction order depends on the threads
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(threads)
    single = capsys.readouterr().out
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                           "-m", "inception_core", *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # FID: 11 images in 64 dimensions leave S1 S2 with eigenvalues at rounding level, whose square roots
    # (~1e-8) carry the merge-order rounding into the result; KID has no square root
    for label, rtol in (("FID", 1e-6), ("KID", 1e-9)):
        one = float(re.search(rf"{label}: (\S+)", single).group(1))
        two = float(re.search(rf"{label}: (\S+)", proc.stdout).group(1))
        assert abs(one - two) <= rtol * abs(one), (label, one, two)
    assert proc.stdout.count("FID:") == 1  # rank 0 prints
    assert "11 images" in proc.stderr and "(2 processes)" in proc.stderr
