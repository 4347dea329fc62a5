"""Type stubs of the compiled ``keep.pyx`` (twin: ``keep_py.py``)."""
import numpy as np

CYTHON_MODULE: int

def kept_bytes(offsets: np.ndarray, size: int, offset: int, starts: np.ndarray,
               ends: np.ndarray) -> int: ...
def keep_strings(offsets: np.ndarray, data: np.ndarray, offset: int, starts: np.ndarray,
                 ends: np.ndarray, out_offsets: np.ndarray, out_data: np.ndarray) -> None: ...
def keep_bits(bits: np.ndarray, offset: int, starts: np.ndarray, ends: np.ndarray,
              out: np.ndarray) -> int: ...
