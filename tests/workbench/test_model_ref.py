"""``workbench.runs.resolve_model_ref``: the one reading of a ``--model`` argument that probes,
circuits and the Fourier number spectra share (a model directory or a stored run)."""

import pytest

from workbench.errors import UserError
from workbench.runs import RunHandle, resolve_model_ref


def test_a_directory_is_a_path_and_a_run_is_its_handle(store, tmp_path):
    assert resolve_model_ref(str(tmp_path), store) == tmp_path
    run = store.create_run(kind="train", task="sort", config={}, name="tiny")
    for ref in (run.id, "tiny"):
        handle = resolve_model_ref(ref, store)
        assert isinstance(handle, RunHandle) and handle.id == run.id


def test_a_file_or_an_unknown_name_is_one_clear_error(store, tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(UserError, match="is a file; give a model directory or a run"):
        resolve_model_ref(str(weights), store)
    with pytest.raises(UserError, match="unknown model 'nobody': not a model directory and no "
                                        "run of that id or name in"):
        resolve_model_ref("nobody", store)
    assert store.list_runs() == []
