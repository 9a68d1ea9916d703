"""vecdex.contrib.dist under mpirun (mpi_dist_worker.py): routed writes
equal brute force and one index exactly, save / reload on a fresh mpirun,
a killed rank.  Skips where mpi4py or mpirun is missing."""
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py")
if not shutil.which("mpirun"):
    pytest.skip("no mpirun (openmpi-bin)", allow_module_level=True)

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_dist_worker.py")


def mpirun(n, *args, recovery=False):
    cmd = ["mpirun", "--oversubscribe", "--allow-run-as-root", "--bind-to", "none",
           "-x", "OMP_NUM_THREADS=1", "-x", "PYTHONPATH"]
    if recovery:
        cmd.append("--enable-recovery")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.run(cmd + ["-np", str(n), sys.executable, WORKER, *map(str, args)],
                       capture_output=True, text=True, timeout=120, env=env)
    return p.stdout + p.stderr


@pytest.mark.parametrize("n", [2, 3])
def test_write_save_reload(tmp_path, n):
    out = mpirun(n, "write", tmp_path / "sh")
    assert f"mpi_dist_worker write ({n} ranks): OK" in out, out
    out = mpirun(n, "reload", tmp_path / "sh")
    assert f"mpi_dist_worker reload ({n} ranks): OK" in out, out


def test_killed_rank():
    out = mpirun(3, "kill", recovery=True)
    assert "mpi_dist_worker kill (3 ranks): OK" in out, out
