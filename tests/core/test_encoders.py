"""core/encoders.py: the encoder contract helpers and TableEncoder (an MLP over a table)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fewshot_apps.core.encoders import (
    Encoder,
    TableEncoder,
    label_prior,
    supports_last_layer_split,
    tasks_hidden,
)
from fewshot_apps.errors import FewshotError

N, F_DIM = 12, 5


def table(seed: int = 0, n: int = N, f: int = F_DIM) -> torch.Tensor:
    return torch.randn(n, f, generator=torch.Generator().manual_seed(seed))


def encoder(seed: int = 0, **kw) -> TableEncoder:
    torch.manual_seed(seed)
    return TableEncoder(table(), **{"hidden": 8, "out_dim": 3, **kw})


# ------------------------------------------------------------------ shapes


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_forward_maps_n_ids_to_n_by_out_dim(depth):
    enc = encoder(depth=depth)
    ids = torch.tensor([0, 3, 3, 11])
    out = enc(ids)
    assert out.shape == (4, 3) and out.dtype == torch.float32
    assert enc.out_dim == 3 and (enc.num_examples, enc.in_dim) == (N, F_DIM)
    # repeated ids give repeated rows
    torch.testing.assert_close(out[1], out[2])
    # trunk: [n, hidden], or the raw features [n, f] for a linear encoder
    trunk = enc.forward_trunk(ids)
    assert trunk.shape == ((4, F_DIM) if depth == 1 else (4, 8))
    if depth == 1:
        torch.testing.assert_close(trunk, enc.features[ids])
    # number of linear layers = depth
    assert sum(isinstance(m, nn.Linear) for m in enc.modules()) == depth


def test_empty_batch_and_integer_features():
    enc = TableEncoder(torch.arange(12).reshape(4, 3), hidden=4, out_dim=2)
    assert enc.features.dtype == torch.float32  # ints are made floats
    assert enc(torch.zeros(0, dtype=torch.long)).shape == (0, 2)


@pytest.mark.parametrize("bad", [torch.zeros(5), torch.zeros(2, 3, 4)])
def test_features_must_be_a_2d_table(bad):
    with pytest.raises(FewshotError, match=r"features must be \[num_examples, f\]"):
        TableEncoder(bad)


def test_depth_must_be_at_least_one():
    with pytest.raises(FewshotError, match="depth must be >= 1"):
        TableEncoder(table(), depth=0)


def test_no_running_statistics_and_rows_are_encoded_independently():
    """LayerNorm, not BatchNorm: an example's embedding never depends on its batch mates."""
    enc = encoder(depth=3).eval()
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in enc.modules())
    ids = torch.arange(N)
    torch.testing.assert_close(enc(ids)[5:6], enc(ids[5:6]))
    # the only buffer is the feature table
    assert [name for name, _ in enc.named_buffers()] == ["features"]


def test_dropout_is_active_in_training_only():
    enc = encoder(depth=2, dropout=0.5)
    ids = torch.arange(N)
    enc.train()
    assert not torch.equal(enc(ids), enc(ids))
    enc.eval()
    torch.testing.assert_close(enc(ids), enc(ids))


# ------------------------------------------------------------------ last layer split


def test_last_layer_split_matches_forward_and_takes_replacement_params():
    enc = encoder(depth=2)
    assert supports_last_layer_split(enc)
    names = enc.last_layer_names()
    params = dict(enc.named_parameters())
    assert set(names) <= set(params)
    ids = torch.tensor([1, 2, 7])
    hidden = enc.forward_trunk(ids)
    torch.testing.assert_close(enc.forward_last(hidden), enc(ids))
    own = {n: params[n] for n in names}
    torch.testing.assert_close(enc.forward_last(hidden, own), enc(ids))
    # other parameters: a zero weight leaves only the bias, and gradients reach them
    other = {
        "last.weight": torch.zeros_like(params["last.weight"], requires_grad=True),
        "last.bias": torch.tensor([1.0, -2.0, 0.5], requires_grad=True),
    }
    out = enc.forward_last(hidden, other)
    torch.testing.assert_close(out, other["last.bias"].detach().expand(3, 3))
    out.sum().backward()
    assert other["last.weight"].grad is not None and other["last.bias"].grad is not None
    # the module's own last layer was not touched
    assert not torch.equal(params["last.weight"], torch.zeros_like(params["last.weight"]))


def test_supports_last_layer_split_needs_all_three_methods():
    class Half(nn.Module):
        out_dim = 2

        def forward_trunk(self, ids):
            return ids

        def forward_last(self, h, params=None):
            return h

    assert not supports_last_layer_split(Half())
    assert not supports_last_layer_split(nn.Linear(2, 2))


def test_encoder_protocol():
    assert isinstance(encoder(), Encoder)
    assert not isinstance(nn.Linear(2, 2), Encoder)  # no out_dim


# ------------------------------------------------------------------ config round trip


def test_config_is_json_and_names_the_factory():
    import json

    enc = encoder(depth=3, dropout=0.25)
    cfg = enc.config()
    assert json.loads(json.dumps(cfg)) == cfg
    assert cfg == {
        "name": "table", "num_examples": N, "in_dim": F_DIM, "hidden": 8, "out_dim": 3,
        "depth": 3, "dropout": 0.25, "store_features": True,
    }  # fmt: skip


@pytest.mark.parametrize("depth", [1, 3])
def test_from_config_with_stored_table_gives_identical_outputs(depth):
    enc = encoder(depth=depth).eval()
    state = enc.state_dict()
    assert "features" in state  # the table travels with the weights
    rebuilt = TableEncoder.from_config(enc.config())  # a zero table until loaded
    assert torch.count_nonzero(rebuilt.features) == 0
    rebuilt.load_state_dict(state)
    rebuilt.eval()
    assert rebuilt.config() == enc.config()
    ids = torch.arange(N)
    torch.testing.assert_close(rebuilt(ids), enc(ids), rtol=0, atol=0)


def test_without_stored_table_the_features_must_be_given():
    enc = encoder(store_features=False).eval()
    assert "features" not in enc.state_dict()
    with pytest.raises(FewshotError, match="saved without its feature table"):
        TableEncoder.from_config(enc.config())
    rebuilt = TableEncoder.from_config(enc.config(), features=table())
    rebuilt.load_state_dict(enc.state_dict())
    rebuilt.eval()
    ids = torch.arange(N)
    torch.testing.assert_close(rebuilt(ids), enc(ids), rtol=0, atol=0)
    assert rebuilt.config()["store_features"] is False


def test_from_config_fills_defaults_for_missing_keys():
    enc = TableEncoder.from_config({"name": "table", "num_examples": 4, "in_dim": 2})
    assert (enc.hidden, enc.out_dim, enc.depth, enc.dropout) == (64, 32, 2, 0.0)
    assert enc.features.shape == (4, 2)


# ------------------------------------------------------------------ optional hooks


class Hiding(nn.Module):
    out_dim = 1

    def __init__(self):
        super().__init__()
        self.calls: list[list[str]] = []

    def hide_tasks(self, names):
        self.calls.append(list(names))

    def label_prior(self, ids):
        return ids.float() * 0.5

    def forward(self, ids):
        return ids.float()[:, None]


def test_tasks_hidden_hides_then_shows_again_even_on_error():
    enc = Hiding()
    with tasks_hidden(enc, ("u1", "u2")):
        assert enc.calls == [["u1", "u2"]]
    assert enc.calls[-1] == []
    with pytest.raises(RuntimeError), tasks_hidden(enc, ["u3"]):
        raise RuntimeError("boom")
    assert enc.calls[-2:] == [["u3"], []]


def test_tasks_hidden_is_a_no_op_without_hide_tasks():
    enc = encoder()
    with tasks_hidden(enc, ["anything"]):
        out = enc(torch.tensor([0]))
    assert out.shape == (1, 3)


def test_label_prior_of_an_encoder_with_and_without_one():
    ids = torch.tensor([0, 2, 4])
    assert label_prior(encoder(), ids) is None
    torch.testing.assert_close(label_prior(Hiding(), ids), torch.tensor([0.0, 1.0, 2.0]))
