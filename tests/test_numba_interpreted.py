"""``NUMBA_DISABLE_JIT=1 --backend numba`` (stepping through the numba kernel as plain
Python) prices exactly as the compiled kernels and the reference do."""
from __future__ import annotations

import os
import subprocess
import sys

import pyarrow.parquet as pq

import txcore
from conftest import FIXTURES, RULES


def test_the_numba_kernel_runs_interpreted(tmp_path):
    days = []
    for name in ("txns-2015-10-29.parquet", "txns-2015-10-30.parquet"):
        small = tmp_path / name  # 1,500 rows a day: the interpreted kernel is slow
        pq.write_table(pq.read_table(FIXTURES / name).slice(0, 1500), small)
        days.append(small)
    common = ["--rules", str(RULES), "--cards", str(FIXTURES / "cards.csv"),
              "--merchants", str(FIXTURES / "merchants.csv"), "--no-progress"]
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    for day in days:  # two runs: the second loads the first's state into the kernel
        done = subprocess.run([sys.executable, "-W", "error", "-m", "txcore", "run", *common,
                               "--backend", "numba", "--state", str(tmp_path / "st"), "-o",
                               str(tmp_path / "interpreted"), str(day)],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "backend numba" in done.stdout
        for backend in ("python", "cython"):
            txcore.run([day], rules=RULES, cards=FIXTURES / "cards.csv",
                       merchants=FIXTURES / "merchants.csv", state_dir=tmp_path / backend,
                       out_dir=tmp_path / f"{backend}-out", backend=backend, progress=False)
        for kind in ("priced", "rejects"):
            name = f"{day.stem}.{kind}.parquet"
            got = pq.read_table(tmp_path / "interpreted" / name)
            assert got.num_rows > 0 or kind == "rejects"
            for backend in ("python", "cython"):
                assert got.equals(pq.read_table(tmp_path / f"{backend}-out" / name)), \
                    (backend, name)
