import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # The test machine is shared: one intra-op thread is faster than two contending ones.
    torch.set_num_threads(1)
    torch.manual_seed(0)
