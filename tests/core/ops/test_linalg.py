"""solve_psd: equals numpy's solve on PD systems (real and complex, batched), least squares on singular ones."""
import numpy as np
import pytest
import torch

from sigplex.core.ops import solve_psd


def _pd(batch, n, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(batch, n, n, generator=g, dtype=torch.float64)
    if dtype.is_complex:
        m = torch.complex(m, torch.randn(batch, n, n, generator=g, dtype=torch.float64))
    return m @ m.mH + n * torch.eye(n, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_matches_numpy_solve_after_set_num_threads(dtype):
    # batched LU (torch.linalg.solve) of this size fails in the pinned CPU build after set_num_threads
    torch.set_num_threads(torch.get_num_threads())
    a = _pd(3, 300, dtype)
    b = torch.randn(3, 300, 2, dtype=torch.float64).to(dtype)
    x = solve_psd(a, b)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a.numpy(), b.numpy()), rtol=1e-8, atol=1e-10)


def test_singular_items_fall_back_to_minimum_norm_least_squares():
    a = _pd(2, 6, torch.float64)
    # rank 1 with small integers: Cholesky's second pivot is exactly 0 on any CPU (with random
    # entries it is rounding noise of either sign, and whether Cholesky fails depends on the CPU)
    v = torch.tensor([[1.0], [-2.0], [3.0], [1.0], [2.0], [-1.0]], dtype=torch.float64)
    a[1] = v @ v.T
    b = torch.randn(2, 6, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = solve_psd(a, b)
    np.testing.assert_allclose(x[0].numpy(), np.linalg.solve(a[0].numpy(), b[0].numpy()), rtol=1e-9)
    np.testing.assert_allclose(x[1].numpy(), np.linalg.lstsq(a[1].numpy(), b[1].numpy(), rcond=None)[0], rtol=1e-6)


def test_unbatched_and_shape_errors():
    a = _pd(1, 4, torch.float64)[0]
    b = torch.ones(4, 1, dtype=torch.float64)
    torch.testing.assert_close(a @ solve_psd(a, b), b)
    with pytest.raises(ValueError, match=r"solve_psd: a \(4, 4\) and b \(3, 1\)"):
        solve_psd(a, torch.ones(3, 1, dtype=torch.float64))
