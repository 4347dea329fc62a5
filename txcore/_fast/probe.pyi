# Types of the compiled segment probe (probe.pyx); the Cython type of each array is in
# its comment.  Twin: probe_py.py.
import numpy as np

CYTHON_MODULE: int

def merge_match(seg_hi: np.ndarray,  # const uint64_t[::1], sorted with seg_lo
                seg_lo: np.ndarray,  # const uint64_t[::1]
                q_hi: np.ndarray,    # const uint64_t[::1], sorted with q_lo
                q_lo: np.ndarray,    # const uint64_t[::1]
                seg_at: np.ndarray,  # int64_t[::1], OUT
                q_at: np.ndarray,    # int64_t[::1], OUT
                ) -> int: ...
def radix_match(seg_hi: np.ndarray, seg_lo: np.ndarray,  # const uint64_t[::1]
                q_hi: np.ndarray, q_lo: np.ndarray,      # const uint64_t[::1]
                table: np.ndarray,   # const int64_t[::1], from radix_table (txcore.state.segments)
                shift: int,
                seg_at: np.ndarray,  # int64_t[::1], OUT
                q_at: np.ndarray,    # int64_t[::1], OUT
                ) -> int: ...
