import pytest

from universeg_plus import create_model, get_config, list_models, list_pretrained

REQUIRED = {
    "universeg-v1",
    "universeg-v1-relu",
    "universeg-v1-gelu",
    "universeg-v1-cross-act",
    "universeg-v1-no-outconv",
    "universeg-small",
    "universeg-tiny",
}


def test_required_variants_registered():
    assert REQUIRED <= set(list_models())


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        create_model("universeg-v7")
    msg = str(err.value)
    assert "universeg-v7" in msg
    for name in REQUIRED:
        assert name in msg


def test_overrides_are_validated():
    m = create_model("universeg-v1", encoder_blocks=(16, 16, 16, 16))
    assert m.config.encoder_blocks == (16, 16, 16, 16)
    with pytest.raises(ValueError, match="encoder_blocks"):
        get_config("universeg-v1", encoder_blocks=(16, 0))
    with pytest.raises(ValueError, match="nonsense"):
        get_config("universeg-v1", nonsense=3)


def test_pretrained_unknown_is_clear():
    names = set(list_pretrained())
    missing = next(n for n in sorted(REQUIRED) if n not in names)
    with pytest.raises(ValueError, match="no pretrained weights"):
        create_model(missing, pretrained=True)


@pytest.mark.parametrize("name", list_models())
def test_model_config_travels(name):
    model = create_model(name)
    assert model.config == get_config(name)


def test_pretrained_auto_falls_back_with_a_warning(caplog):
    missing = next(n for n in sorted(REQUIRED) if n not in set(list_pretrained()))
    with caplog.at_level("WARNING", logger="universeg_plus.registry"):
        model = create_model(missing, pretrained="auto")
    assert model.config == get_config(missing)
    assert "randomly initialised" in caplog.text


def test_default_model_has_weights_when_any_are_declared():
    from universeg_plus import default_model_name

    name = default_model_name()
    assert name in list_models()
    if list_pretrained():
        assert name in list_models(pretrained=True)
