import pytest
import torch
from diffusers import SkyReelsV2DiffusionForcingPipeline

from motioncache.schedule import plan_windows, split_blocks, step_matrix


@pytest.mark.parametrize("frames,steps,ar_step,block,ready", [
    (5, 4, 0, 1, 0), (9, 6, 2, 3, 0), (20, 10, 5, 5, 0), (25, 30, 5, 5, 5), (12, 5, 1, 4, 4), (8, 3, 0, 2, 0),
])
def test_step_matrix_matches_diffusers(frames, steps, ar_step, block, ready):
    timesteps = torch.linspace(1000, 0, steps + 1)[:-1]
    ref_matrix, ref_index, ref_update, _ = SkyReelsV2DiffusionForcingPipeline.generate_timestep_matrix(
        None, frames, timesteps, frames, ar_step, ready, block)
    m = step_matrix(frames // block, steps, ar_step, ready // block)
    expand = lambda t: t.repeat_interleave(block, dim=1)  # noqa: E731  (diffusers works per frame)
    assert torch.equal(expand(m.step_index), ref_index)
    assert torch.equal(expand(m.update), ref_update)
    assert torch.equal(expand(m.timesteps(timesteps)), ref_matrix)


def test_every_block_takes_every_step_once_and_finishes_in_order():
    m = step_matrix(4, 7, 3)
    assert m.update.sum(0).tolist() == [7, 7, 7, 7]
    finish_rows = [int(torch.nonzero(m.update[:, b] & (m.step_index[:, b] == 7))[0]) for b in range(4)]
    assert finish_rows == sorted(finish_rows) and finish_rows[0] == 6
    assert m.rows == 7 + 3 * 3


def test_last_block_may_be_short_so_no_frame_is_left_as_noise():
    assert split_blocks(0, 11, 5) == [(0, 5), (5, 10), (10, 11)]
    (w,) = plan_windows(11, 25, 0, 0, 5)
    m = step_matrix(len(w.blocks), 4, 2)
    assert w.blocks[-1] == (10, 11) and m.update[:, -1].sum() == 4


def test_windows_cover_the_video_with_overlap_like_diffusers():
    ws = plan_windows(45, 25, 5, 0, 5)  # the paper's 177 frames, base 97, overlap 17
    assert [(w.start, w.num_frames, w.context_frames) for w in ws] == [(0, 25, 0), (20, 25, 5)]
    ws = plan_windows(30, 25, 5, 0, 5)
    assert [(w.start, w.num_frames, w.context_frames) for w in ws] == [(0, 25, 0), (20, 10, 5)]
    ws = plan_windows(9, 9, 0, 1, 3)  # image condition: one given latent frame, its own block
    assert ws[0].blocks[:2] == ((0, 1), (1, 4)) and ws[0].num_context_blocks == 1
