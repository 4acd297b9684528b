"""Callbacks and overlay pictures: OverlayLogger and RenderThroughput write real TensorBoard events and PNGs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from drreg.callbacks import InterruptibleModelCheckpoint, OverlayLogger, RenderThroughput, peak_memory_mib
from drreg.registration import CoarseToFine, Imaging, RegistrationData, RegistrationModule
from drreg.viz import OVERLAY_PANELS, overlay_grid, overlay_panels
from tests._phantoms import blob_subject

TRUE_POSE = [4.0, -3.0, 2.0, 5.0, 850.0, -4.0]
START_POSE = [9.0, -8.0, 6.0, 15.0, 860.0, -12.0]
SIZE = 48


# ---------------------------------------------------------------------------------------------------- pictures


def test_overlay_panels_shapes_and_range():
    panels = overlay_panels(torch.rand(3, 1, 10, 12) * 50, torch.rand(3, 1, 10, 12) - 7)
    assert tuple(panels) == OVERLAY_PANELS
    for image in panels.values():
        assert image.shape == (3, 3, 10, 12) and image.dtype == torch.float32
        assert image.min() >= 0 and image.max() <= 1


def test_identical_images_have_a_white_difference():
    image = torch.rand(2, 1, 16, 16)
    panels = overlay_panels(image, 3.0 * image + 1.0)  # same picture, other intensity scale
    torch.testing.assert_close(panels["difference"], torch.ones_like(panels["difference"]), atol=1e-5, rtol=0)
    torch.testing.assert_close(panels["target"], panels["drr"], atol=1e-5, rtol=0)


def test_difference_is_red_where_the_target_is_brighter():
    target, drr = torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)
    target[..., :4, :] = 1.0
    drr[..., :, :4] = 1.0
    difference = overlay_panels(target, drr)["difference"][0]
    red_only = difference[:, 0, 6]  # top rows, right half: target bright, DRR dark
    blue_only = difference[:, 6, 0]
    assert red_only[0] == 1 and red_only[2] < 0.5  # (1, g, b) with little blue: red
    assert blue_only[2] == 1 and blue_only[0] < 0.5


def test_checkerboard_alternates_target_and_drr():
    target, drr = torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8)
    target[0, 0, 0, 0], drr[0, 0, 0, 0] = 1.0, 0.0  # give both a range
    board = overlay_panels(target, drr, tile=4)["checkerboard"][0, 0]
    assert board[1, 1] == 0 and board[1, 5] == 1 and board[5, 1] == 1 and board[5, 5] == 0


def test_edges_mark_the_drr_outline():
    drr = torch.zeros(1, 1, 20, 20)
    drr[..., 5:15, 5:15] = 1.0
    edges = overlay_panels(torch.rand(1, 1, 20, 20), drr)["edges"][0]
    colour = torch.tensor([1.0, 0.2, 0.9])[:, None, None]
    magenta = torch.isclose(edges, colour).all(dim=0)
    assert magenta[5, 10] and magenta[10, 5] and not magenta[10, 10] and not magenta[0, 0]


def test_overlay_grid_tiles_rows_and_columns():
    panels = {name: torch.full((2, 3, 4, 5), float(i) / 10) for i, name in enumerate(OVERLAY_PANELS)}
    grid = overlay_grid(panels, padding=1)
    assert grid.shape == (3, 2 * 5 - 1, 5 * 6 - 1)
    assert grid[0, 0, 0] == 0.0 and grid[0, 5, 6] == 0.1 and grid[0, 4, 0] == 1.0  # padding is white


@pytest.mark.parametrize(
    ("target", "drr", "match"),
    [
        (torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 5), "same shape"),
        (torch.rand(1, 2, 4, 4), torch.rand(1, 2, 4, 4), "target must be"),
        (torch.full((1, 1, 4, 4), float("nan")), torch.rand(1, 1, 4, 4), "finite"),
    ],
)
def test_overlay_panels_reject_bad_input(target, drr, match):
    with pytest.raises(ValueError, match=match):
        overlay_panels(target, drr)


# --------------------------------------------------------------------------------------------------- callbacks


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A short registration with both callbacks and a real TensorBoard logger; the events are read back."""
    folder = tmp_path_factory.mktemp("tensorboard")
    data = RegistrationData(true_poses=[TRUE_POSE], imaging=Imaging(volume=blob_subject(), height=SIZE, delx=5.0))
    module = RegistrationModule(
        [START_POSE],
        data.imaging,
        schedule=CoarseToFine(scales=[0.5, 1.0], stage_steps=[6, 6], stop_patience=None),
        p_subsample=0.5,
    )
    overlay, throughput = OverlayLogger(every_n_steps=4), RenderThroughput(every_n_steps=3)
    trainer = Trainer(
        max_steps=12,
        max_epochs=1,
        logger=TensorBoardLogger(folder, name="run"),
        log_every_n_steps=1,
        callbacks=[overlay, throughput],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=data)
    events = EventAccumulator(trainer.log_dir, size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return trainer, module, overlay, throughput, events


def test_overlays_are_written_to_tensorboard(run):
    trainer, *_, events = run
    images = events.Images("overlay")
    # The first step, every 4th step, and the end.
    assert [image.step for image in images] == [1, 4, 8, 12]
    first = Image.open(io.BytesIO(images[0].encoded_image_string))
    last = Image.open(io.BytesIO(images[-1].encoded_image_string))
    # One row, five panels: the coarse stage renders 24 x 24 pixels, the fine one 48 x 48 (2 px padding).
    assert first.size == (5 * 26 - 2, 24) and last.size == (5 * 50 - 2, 48)


def test_overlay_png_shows_start_and_end(run):
    trainer, _, overlay, *_ = run
    assert overlay.png_path == Path(trainer.log_dir) / "overlay.png"
    with Image.open(overlay.png_path) as picture:
        assert picture.size[0] > 500 and picture.size[1] > 300


def test_throughput_scalars_are_consistent(run):
    trainer, module, _, throughput, events = run
    tags = set(events.Tags()["scalars"])
    expected = {"throughput/drrs_per_s", "throughput/rays_per_s", "throughput/it_per_s", "throughput/peak_memory_mib"}
    assert expected <= tags and "train/loss" in tags and "train/mtre_mm" in tags
    assert [event.step for event in events.Scalars("throughput/it_per_s")] == [3, 6, 9, 12]
    last = throughput.last
    # One DRR per step, and the fine stage renders half of the 48 x 48 pixels.
    assert last["throughput/drrs_per_s"] == pytest.approx(last["throughput/it_per_s"])
    assert last["throughput/rays_per_s"] == pytest.approx(last["throughput/it_per_s"] * int(0.5 * SIZE * SIZE))
    assert 0 < last["throughput/peak_memory_mib"] == pytest.approx(peak_memory_mib(torch.device("cpu")), rel=0.5)


def test_overlay_logger_needs_overlay_images(tmp_path):
    class Plain(LightningModule):
        def training_step(self, batch, batch_idx):
            return None

        def configure_optimizers(self):
            return None

    trainer = Trainer(max_steps=1, logger=False, callbacks=[OverlayLogger()], enable_progress_bar=False)
    with pytest.raises(TypeError, match="overlay_images"):
        trainer.fit(Plain(), train_dataloaders=[torch.zeros(1)])


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: OverlayLogger(every_n_steps=-1), "every_n_steps"),
        (lambda: OverlayLogger(max_images=0), "max_images"),
        (lambda: RenderThroughput(every_n_steps=0), "every_n_steps"),
    ],
)
def test_callbacks_reject_bad_settings(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_overlay_png_keeps_the_users_matplotlib_backend_issue5(tmp_path):
    # Regression: saving the PNG switched pyplot to Agg, so a notebook's later figures were never shown.
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        data = RegistrationData(true_poses=[TRUE_POSE], imaging=Imaging(volume=blob_subject(), height=16, delx=12.0))
        module = RegistrationModule(
            [START_POSE], data.imaging, schedule=CoarseToFine(stage_steps=[2]), p_subsample=None
        )
        overlay = OverlayLogger(png=str(tmp_path / "overlay.png"))
        Trainer(max_steps=2, max_epochs=1, logger=False, callbacks=[overlay], enable_progress_bar=False,
                enable_checkpointing=False, enable_model_summary=False, default_root_dir=tmp_path).fit(
            module, datamodule=data)  # fmt: skip
        assert (tmp_path / "overlay.png").exists() and matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)


class _FailsAtStep(LightningModule):
    """A linear model whose training step raises at ``step`` (what Ctrl-C or a crash does to a training)."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step
        self.linear = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        if self.global_step == self.step:
            raise RuntimeError("stopped")
        return self.linear(batch).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_interrupt_checkpoint_is_named_as_such_issue10(tmp_path):
    # Lightning's save_on_exception named it like a best checkpoint (best-step=N.ckpt): now interrupted.ckpt.
    checkpoint = InterruptibleModelCheckpoint(dirpath=tmp_path, filename="best-{step}", save_last=True,
                                              save_on_exception=True, every_n_train_steps=100)  # fmt: skip
    trainer = Trainer(max_steps=10, logger=False, callbacks=[checkpoint], enable_progress_bar=False,
                      enable_model_summary=False)  # fmt: skip
    with pytest.raises(RuntimeError, match="stopped"):
        trainer.fit(_FailsAtStep(3), train_dataloaders=torch.utils.data.DataLoader(torch.zeros(10, 2)))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["interrupted.ckpt", "last.ckpt"]
    for name in ("interrupted.ckpt", "last.ckpt"):
        assert torch.load(tmp_path / name, map_location="cpu", weights_only=False)["global_step"] == 3
