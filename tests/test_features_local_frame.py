"""Local line frames (b_hat, n_hat, s_hat): the vectorized builder agrees with the per-line one."""

from __future__ import annotations

import numpy as np
import pytest

from dislomob.features.local_frame import FrameRowError, line_frame, line_frames


def test_vectorized_frames_equal_the_per_line_frame_and_name_the_first_bad_row():
    rng = np.random.default_rng(3)
    normals = rng.normal(size=(40, 3))
    burgers = np.cross(normals, rng.normal(size=(40, 3)))
    frames = line_frames(burgers, normals)
    for k in range(40):
        assert np.allclose(frames[k], line_frame(burgers[k], normals[k]), rtol=0, atol=1e-14)
    one_b = line_frames(burgers[0], normals[:1] + 0.0)
    assert np.allclose(one_b[0], frames[0], rtol=0, atol=1e-14)
    normals[7] = burgers[7]
    normals[9] = 0.0
    with pytest.raises(FrameRowError, match=r"row 7: Burgers vector .* is not in the slip plane") as err:
        line_frames(burgers, normals)
    assert err.value.row == 7
