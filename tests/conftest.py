import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    # Two OpenMP threads on a shared 2-core machine can be 10x slower than one.
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
