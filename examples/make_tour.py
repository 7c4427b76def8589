"""Build examples/tour.ipynb from the cells below and run it, so it is saved with its outputs.

    python examples/make_tour.py          # needs MNIST (see README) and nbclient + ipykernel

The test suite runs the saved notebook top to bottom again (tests/test_tour.py).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent

CELLS = [
    ("markdown", """# A tour of oipscope

This notebook follows the blog series *A simple CNN for the MNIST dataset*: the series' CNN,
the activation patterns (FCPs) of real digits (parts IV–VI), the original input patterns (OIPs)
that make a map fire most (parts VIII–IX), and how the OIPs compare with the training images
that drive the same maps. Step counts are small so the notebook runs in a minute."""),
    ("code", """import oipscope
from oipscope.figures import plot

model = oipscope.default_model()          # the series' CNN, trained on MNIST (99.5 % test accuracy)
[(layer.name, layer.n_maps) for layer in oipscope.feature_layers(model)]"""),
    ("markdown", """To train it yourself instead (20 epochs, about 6 minutes on 2 CPU cores):

```python
trained = oipscope.train(oipscope.TrainConfig(dataset="mnist", epochs=20), "my_cnn.keras")
print(f"test accuracy {trained.test_accuracy:.2%}")
model = oipscope.load_model(trained.path)
```"""),
    ("markdown", """## Activation patterns of real digits

The maps of `Conv2D_2` for four images of the digit 4 (parts IV and V of the series): each
image's 64 maps in an 8×8 grid, the input beside them, one colour scale for all."""),
    ("code", """from oipscope.analysis.activations import layer_activations, select_images

data = oipscope.load_dataset("mnist")
images, labels, indices = select_images(data.test, label=4, count=4)
activations = layer_activations(model, "Conv2D_2", images)
plot.activation_grid(activations, images=images, titles=[f"test #{i}" for i in indices])"""),
    ("markdown", """## OIPs of the innermost layer

All selected maps of `Conv2D_3` are optimized together in one compiled TensorFlow graph: the
precursor picks the best of 32 random starts per map, restarts and a pre-activation rescue wake
maps that stay silent."""),
    ("code", """config = oipscope.OipConfig(seed=0)     # up to 600 steps per map, as in the series
result = oipscope.find_oips(model, "Conv2D_3", maps="0-15", config=config)
result.summary()"""),
    ("code", "plot.oip_grid(result)"),
    ("code", "plot.evolution(result.maps[1])"),
    ("code", "plot.activation_curves(result, maps=range(6))"),
    ("markdown", """## OIPs against the data

The whole training set is streamed through the layer to find each map's top images. The
*superstimulus ratio* is the OIP's mean activation divided by the best training image's: above 1,
the pattern drives the map harder than any real digit. The full CNN also tells which digit it
sees in each OIP."""),
    ("code", """from oipscope.runs import examine_layer

result, examples = examine_layer(model, result, data)
{key: result.summary()[key] for key in ("median_ratio", "ratio_at_least_1", "common_evoked_class")}"""),
    ("code", "plot.examples_figure(examples, 1, data.train.images, labels=data.train.labels)"),
    ("code", """plot.map_card(result.maps[1], examples, data.train.images, class_names=data.class_names,
              labels=data.train.labels, layer_name="Conv2D_3")"""),
    ("markdown", """## Class profiles and classification by patterns

The same pass over the training images gathered each map's mean activation per digit (its class
profile) and how well the vector of map means alone tells the digits apart: a nearest-class-
pattern classifier, centroids from the images with even index, accuracy on the odd ones
(part VI of the series)."""),
    ("code", """from oipscope.figures.profiles import class_profiles

print(f"pattern accuracy of Conv2D_3: {examples.pattern_accuracy:.1%}")
class_profiles(examples, data.class_names)"""),
    ("markdown", """## The gallery

`write_gallery` writes a static HTML site (it works from `file://`, no network) with one page per
layer and per map; `oipscope zoo` does all of the above for every layer with one command."""),
    ("code", """from pathlib import Path

from IPython.display import FileLink

import oipscope.model.loading
from oipscope.gallery.site import write_gallery

summary = (model.name, oipscope.model.loading.describe(model))
index = write_gallery("tour-gallery", summary, [(result, examples)], images=data.train.images,
                      labels=data.train.labels, class_names=data.class_names)
FileLink(index.relative_to(Path.cwd()))  # click to open it in the browser"""),
]


def build() -> nbformat.NotebookNode:
    """The notebook, without outputs."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in CELLS:
        maker = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        notebook.cells.append(maker(source))
    return notebook


# TensorFlow's C++ start-up lines, which no setting silences; kept out of the saved outputs.
TF_STARTUP_NOISE = ("WARNING: All log messages before absl::InitializeLog()", "I0000 ", "W0000 ", "E0000 ",
                    "To enable the following instructions:")


def drop_startup_noise(notebook: nbformat.NotebookNode) -> None:
    """Remove TensorFlow's start-up lines from stderr outputs (other stderr lines stay)."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stderr":
                lines = [line for line in output.text.splitlines(keepends=True)
                         if not line.startswith(TF_STARTUP_NOISE)]
                if not "".join(lines).strip():
                    continue
                output.text = "".join(lines)
            kept.append(output)
        cell.outputs = kept


def execute(notebook: nbformat.NotebookNode, folder: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run every cell in ``folder`` (raises ``CellExecutionError`` on the first failing cell)."""
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


def main() -> None:
    notebook = execute(build(), HERE)
    drop_startup_noise(notebook)
    nbformat.write(notebook, HERE / "tour.ipynb")
    print(f"wrote {HERE / 'tour.ipynb'}")


if __name__ == "__main__":
    main()
