import pytest
from pydantic import ValidationError

from universeg_plus import UniverSegConfig, get_config, list_models


@pytest.mark.parametrize("name", list_models())
def test_config_json_round_trip(name):
    cfg = get_config(name)
    again = UniverSegConfig.model_validate_json(cfg.model_dump_json())
    assert again == cfg
    assert hash(again) == hash(cfg)


def test_config_is_frozen():
    cfg = UniverSegConfig()
    with pytest.raises(ValidationError):
        cfg.activation = "relu"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"encoder_blocks": ()}, "encoder_blocks"),
        ({"encoder_blocks": (64, 0, 64)}, "encoder_blocks"),
        ({"encoder_blocks": (64, -3)}, "encoder_blocks"),
        ({"decoder_blocks": (64, 64)}, "decoder_blocks"),
        ({"decoder_blocks": (64, 0, 64)}, "decoder_blocks"),
        ({"activation": "swish"}, "activation"),
        ({"cross_activation": "tanh"}, "cross_activation"),
        ({"input_size": (100, 128)}, "input_size"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        UniverSegConfig(**kwargs)


def test_v1_defaults():
    cfg = UniverSegConfig()
    assert cfg.encoder_blocks == (64, 64, 64, 64)
    assert cfg.resolved_decoder_blocks == (64, 64, 64)
    assert cfg.size_multiple == 8
    assert cfg.out_conv and cfg.cross_activation is None and cfg.activation == "leakyrelu"
