"""``input = priced + rejected`` is checked before the commit, also under ``python -O``."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import FIXTURES, RULES

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import txcore
    from txcore.engine import compiled

    price_batch = compiled.CythonEngine.price_batch

    def lossy(self, batch):  # an engine fault: the first priced row vanishes
        priced, rejects = price_batch(self, batch)
        return priced.slice(1), rejects

    compiled.CythonEngine.price_batch = lossy
    state, out = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        txcore.run([sys.argv[3]], rules=sys.argv[4], cards=sys.argv[5], out_dir=out,
                   state_dir=state, progress=False)
    except txcore.RowsLost as exc:
        print("RowsLost", exc.exit_code, exc)
        sys.exit(0)
    print("no error")
    sys.exit(1)
""")


def test_a_lost_row_stops_the_commit_even_under_python_O(tmp_path):
    state, out = tmp_path / "state", tmp_path / "out"
    day = sorted(FIXTURES.glob("txns-*.parquet"))[0]
    proc = subprocess.run([sys.executable, "-O", "-c", SCRIPT, str(state), str(out), str(day),
                           str(RULES), str(FIXTURES / "cards.csv")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("RowsLost 4 ")
    assert "nothing of this run was committed" in proc.stdout
    assert not (state / "CURRENT").exists()          # no commit
    assert not [p for p in out.iterdir() if not p.name.startswith(".")] if out.exists() else True
