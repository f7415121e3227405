import pytest
import torch
from rigserve.sensors.specs import all_subsets
from rigserve.training.encoders import ENCODERS, EncoderConfig, create_encoder
from rigserve.training.factory import build_model
from rigserve.training.model import MultimodalModel

from tests.training.helpers import SHAPES, random_inputs, tiny_config


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_every_registered_encoder_maps_its_input_to_a_dim_vector(name):
    enc = create_encoder(name, EncoderConfig(dim=12, input_shape=SHAPES[name], width=4,
                                             centroids=8, neighbours=4))
    x = random_inputs((name,), 3)[name]
    assert enc(x).shape == (3, 12)


def test_unknown_encoder_names_the_registered_ones():
    with pytest.raises(KeyError, match=r"unknown encoder 'radar'; registered: .*depth"):
        create_encoder("radar", EncoderConfig(dim=4, input_shape=(1,)))


def test_point_encoder_ignores_padded_points():
    enc = create_encoder("lidar", EncoderConfig(dim=8, input_shape=SHAPES["lidar"], width=4,
                                                centroids=8, neighbours=4))
    x = random_inputs(("lidar",), 2, valid_points=20)["lidar"]
    y = x.clone()
    y[:, 20:, :3] = torch.randn(2, 12, 3) * 50  # garbage where the flag says padding
    assert torch.allclose(enc(x), enc(y))
    assert not torch.allclose(enc(x), enc(x.flip(1)))  # real points do matter


def test_point_encoder_handles_an_empty_cloud():
    enc = create_encoder("mmwave", EncoderConfig(dim=8, input_shape=SHAPES["mmwave"], width=4))
    x = random_inputs(("mmwave",), 2, valid_points=0)["mmwave"]
    assert torch.isfinite(enc(x)).all()


def test_weights_are_softmax_renormalised_over_the_present_modalities():
    model = MultimodalModel(["wifi", "depth", "lidar"], SHAPES, tiny_config().model)
    with torch.no_grad():
        model.theta.copy_(torch.tensor([0.0, 1.0, -1.0]))  # depth, lidar, wifi
    w = model.purified_weights(["depth", "wifi"])
    e = torch.exp(torch.tensor([0.0, -1.0]))
    assert w == pytest.approx({"depth": float(e[0] / e.sum()), "wifi": float(e[1] / e.sum())})
    assert sum(model.purified_weights().values()) == pytest.approx(1.0)


@pytest.mark.parametrize("strategy", ["pta", "task_only"])
def test_subset_model_equals_the_full_model_on_that_subset(strategy):
    cfg = tiny_config(strategy=strategy)
    model, _ = build_model(cfg.replace(modalities=("depth", "lidar", "wifi")), SHAPES)
    with torch.no_grad():
        model.theta.copy_(torch.tensor([0.3, -0.2, 0.5]))
    model.eval()
    x = random_inputs(("depth", "lidar", "wifi"), 4)
    for subset in all_subsets(model.modalities):
        sub = model.subset_model(subset)
        got = sub(*(x[m] for m in subset))
        want = model({m: x[m] for m in subset})
        assert sub.output_names == ("joints", "action_logits")
        for name, tensor in zip(sub.output_names, got, strict=True):
            torch.testing.assert_close(tensor, want[name], rtol=0, atol=1e-6)


def test_subset_model_rejects_a_modality_the_model_lacks():
    model = MultimodalModel(["depth"], SHAPES, tiny_config().model)
    with pytest.raises(ValueError,
                       match=r"subset \['wifi'\]: must be a non-empty subset of \['depth'\]"):
        model.subset_model(["wifi"])


def test_heads_can_be_switched_off():
    cfg = tiny_config(**{"model.action_head": False})
    model = MultimodalModel(["depth"], SHAPES, cfg.model)
    assert model.output_names == ("joints",)
    assert set(model(random_inputs(("depth",), 2))) == {"joints"}
