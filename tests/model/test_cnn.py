"""oipscope.model.cnn: the series' CNN, its training settings and a short training run."""

from __future__ import annotations

import pytest

from oipscope.model.cnn import TrainConfig, build_cnn, default_model_path, train
from oipscope.errors import ConfigError
from oipscope.model.loading import load_model


def test_build_cnn_layers_and_shapes():
    model = build_cnn()
    names = [layer.name for layer in model.layers]
    assert names == ["Conv2D_1", "Max_Pool_1", "Conv2D_2", "Max_Pool_2", "Conv2D_3", "Flatten", "Dense_1", "Dense_2"]
    shapes = {layer.name: tuple(layer.output.shape) for layer in model.layers}
    assert shapes["Conv2D_1"] == (None, 26, 26, 32)
    assert shapes["Conv2D_2"] == (None, 11, 11, 64)
    assert shapes["Conv2D_3"] == (None, 3, 3, 128)
    assert shapes["Dense_1"] == (None, 70)
    assert shapes["Dense_2"] == (None, 10)
    assert model.get_layer("Dense_2").units == 10
    assert model.get_layer("Dense_2").activation.__name__ == "softmax"
    assert tuple(model.inputs[0].shape) == (None, 28, 28, 1)


def test_build_cnn_sigmoid_and_classes():
    model = build_cnn((32, 32, 3), n_classes=5, output_activation="sigmoid")
    dense = model.get_layer("Dense_2")
    assert dense.units == 5
    assert dense.activation.__name__ == "sigmoid"
    assert tuple(model.inputs[0].shape) == (None, 32, 32, 3)


def test_build_cnn_bad_activation():
    with pytest.raises(ConfigError, match="output_activation"):
        build_cnn(output_activation="relu")


def test_train_config_defaults_valid():
    config = TrainConfig()
    assert config.dataset == "mnist" and config.epochs >= 1


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": -3}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"lr_decay": 0}, "lr_decay"),
        ({"lr_decay": 1.5}, "lr_decay"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"l2": -1e-4}, "l2"),
        ({"validation_split": 0}, "validation_split"),
        ({"validation_split": 1}, "validation_split"),
        ({"augment_shift": 5}, "augment_shift"),
        ({"augment_shift": -1}, "augment_shift"),
        ({"output_activation": "tanh"}, "output_activation"),
        ({"train_limit": 5}, "train_limit"),
    ],
)
def test_train_config_validation(kwargs, field):
    with pytest.raises(ConfigError) as exc_info:
        TrainConfig(**kwargs)
    message = str(exc_info.value)
    assert message.startswith(field)
    assert str(next(iter(kwargs.values()))) in message


def test_train_config_error_is_value_error():
    with pytest.raises(ValueError):
        TrainConfig(epochs=0)


def test_train_rejects_non_keras_output(tmp_path):
    with pytest.raises(ConfigError, match=r"\.keras"):
        train(TrainConfig(epochs=1), tmp_path / "model.h5")


@pytest.mark.slow
def test_train_short_mnist_run(mnist_dir, tmp_path):
    import keras

    out = tmp_path / "m.keras"
    epochs = []
    result = train(
        TrainConfig(epochs=1, train_limit=3000, augment_shift=0, data_dir=str(mnist_dir)),
        out,
        save_h5=True,
        on_epoch_end=lambda epoch, logs: epochs.append((epoch, dict(logs))),
    )
    # short because train_limit holds: one epoch over 3000 - 10% validation = 2700 images, 64 a batch
    assert keras.saving.load_model(out).optimizer.iterations.numpy() == 43  # ceil(2700 / 64)
    assert result.test_accuracy > 0.5
    assert 0 < result.best_val_accuracy <= 1
    assert result.path == str(out)
    assert [epoch for epoch, _ in epochs] == [0]
    assert "val_accuracy" in epochs[0][1]
    assert result.to_dict()["config"]["train_limit"] == 3000
    assert out.is_file()
    assert out.with_suffix(".h5").is_file()
    for path in (out, out.with_suffix(".h5")):
        model = load_model(path)
        assert tuple(model.get_layer("Conv2D_3").output.shape) == (None, 3, 3, 128)


@pytest.mark.slow
def test_train_short_fashion_run(fashion_dir, tmp_path):
    out = tmp_path / "f.keras"
    result = train(
        TrainConfig(dataset="fashion-mnist", epochs=1, train_limit=2000, augment_shift=0, data_dir=str(fashion_dir)),
        out,
        save_h5=True,
    )
    assert result.test_accuracy > 0.3
    assert out.is_file() and out.with_suffix(".h5").is_file()
    load_model(out)
    load_model(out.with_suffix(".h5"))


def test_default_model_path_location():
    path = default_model_path()
    assert path.name == "mnist_cnn.keras"
    assert path.parent.name == "assets"
