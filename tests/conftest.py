import os

# Tests never reach a hub: every model and dataset comes from assets/ or is built here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402

# The quick tier, `pytest -q -m "not slow"`: under 3 minutes on 2 CPU cores, yet every
# package, one tiny request through each method (test_unlearn's
# test_method_returns_a_new_model_and_forgets) and the app's API. `pytest -q` (CI) still runs
# everything. Chosen from a full run's --durations (2026-12-04, 2 cores; the two tests of
# f58ed10 from a quick run's): the tests over about 4 s, and whole files whose shared
# fixture alone takes longer ("*"). Listed here, by file and test function (every
# parameter), so the files themselves stay as they are; tests/test_structure.py checks that
# each name still exists.
SLOW = {
    "test_app.py": {"test_forget_upload_teach_inspect_compare_report",
                    "test_audit_answers_without_retrain_then_shares_one_retrain",
                    "test_sessions_are_isolated", "test_a_closed_page_stops_its_retrain"},
    "test_audit.py": {"test_audit_command_reads_the_forget_result",
                      "test_reference_free_audit_then_retrain_measures_only_retrain",
                      "test_requests_one_after_another",
                      "test_sequence_table_retrains_on_each_union_and_resumes"},
    "test_backbone.py": {"test_real_hub_id_path_with_a_tiny_random_checkpoint"},
    "test_background.py": {"test_the_store_full_with_retrains_queued_stays_within_the_bound"},
    "test_bench.py": {"test_smoke_preset_writes_every_table_and_resumes",
                      "test_device_check_runs_every_step_and_reports_time_and_memory",
                      "test_audited_cells_carry_an_audit_against_the_kept_retrain"},
    "test_browser.py": {"*"},
    "test_cli.py": {"test_generate_train_evaluate_compare_end_to_end",
                    "test_bad_input_exits_with_a_message"},
    "test_distributed.py": {"test_two_process_retrain_matches_one_process"},
    "test_embedded_quality.py": {"*"},
    "test_erasure.py": {"test_retrain_reference_for_training_pairs_retrains_without_them",
                        "test_uploaded_pair_must_be_taught_before_it_can_be_forgotten"},
    "test_export.py": {"*"},
    "test_locality.py": {"test_ours_local_forgets_and_edits_only_linear_weights"},
    "test_mvi.py": {"test_real_hub_ids_with_tiny_random_checkpoints"},
    "test_mvi_embedded.py": {"*"},
    "test_real_preset.py": {"*"},
    "test_real_size.py": {"*"},
    "test_tuning.py": {"test_tuning_never_reads_test_data_or_reported_forget_sets"},
    "test_unlearn.py": {"test_forget_command_saves_a_loadable_model",
                        "test_no_method_reads_test_data",
                        "test_slug_says_when_its_target_is_out_of_reach",
                        "test_methods_run_when_d_f_outnumbers_the_other_groups"},
}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: left out of the quick tier (-m 'not slow')")


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = SLOW.get(item.path.name, ())
        if "*" in names or getattr(item, "originalname", item.name) in names:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    from mmu_core.data.generate import generate_world

    root = tmp_path_factory.mktemp("tiny_world")
    generate_world(root, seed=0, size="tiny")
    return root


@pytest.fixture(scope="session")
def world():
    """The embedded default world (generated once into the user cache, ~5 s)."""
    from mmu_core.data.generate import default_world

    return default_world()


@pytest.fixture(scope="session")
def tiny_backbone(tiny_world):
    """A randomly initialised backbone of the real classes over the tiny world's words."""
    from mmu_core.models.embedded import EmbeddedSize, new_backbone
    from mmu_core.training.recipes import world_texts

    size = EmbeddedSize(image_size=32, patch_size=8, hidden=32, heads=2, embed_dim=16)
    return new_backbone(world_texts(tiny_world), size=size, seed=0)
