"""Taking the cleaned model home (issue 15): the exported folder loads and scores like the
model in memory, its card names nothing that was forgotten, its fingerprint catches a
changed weight, and a push goes where and how it should (hub client replaced)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mmu_core.data.loaders import open_image
from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
from mmu_core.erasure import export as ex
from mmu_core.models.backbone import load_backbone

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def result_dir(world, tmp_path_factory):
    """`forget --out` on privacy forget-5 (one person: every text holds their name)."""
    out = tmp_path_factory.mktemp("forget") / "ga"
    forget = forget_list_path(world, "privacy", 5, 0)
    run = subprocess.run([sys.executable, "-m", "mmu_core", "forget", "--data", str(world),
                          "--forget", str(forget), "--method", "ga", "--set", "steps=2",
                          "--set", "lr=1e-4", "--no-eval", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "weights SHA-256" in run.stdout
    return out


def _scores(bb, pairs):
    return bb.score_pairs([open_image(p) for p in pairs], [p.text for p in pairs])


def test_exported_folder_loads_and_scores_like_the_result(world, result_dir, tmp_path):
    from transformers import BlipForImageTextRetrieval

    record = ex.export(result_dir, tmp_path / "clean")
    sc = load_scenario(world, "privacy")
    pairs = sc.train[:6]
    before = _scores(load_backbone(str(result_dir)), pairs)
    after = _scores(load_backbone(str(tmp_path / "clean")), pairs)
    assert torch.allclose(before["itm"], after["itm"]) and torch.allclose(before["itc"],
                                                                         after["itc"])
    assert type(BlipForImageTextRetrieval.from_pretrained(tmp_path / "clean")).__name__ == \
        "BlipForImageTextRetrieval"
    assert not (tmp_path / "clean" / ex.INTERNAL).exists()  # the ids stay behind
    assert record["settings"] == {"steps": 2, "lr": 1e-4, "batch_size": 32}  # resolved
    assert ex.verify(tmp_path / "clean")["match"]


def test_card_and_public_record_name_nothing_forgotten(world, result_dir, tmp_path):
    ex.export(result_dir, tmp_path / "clean")
    sc = load_scenario(world, "privacy")
    ids = load_forget_ids(forget_list_path(world, "privacy", 5, 0))
    forgotten = [p for p in sc.train if p.pair_id in set(ids)]
    name = " ".join(forgotten[0].text.split()[:2])  # "<first> <last>" of the forgotten person
    internal = json.loads((result_dir / ex.INTERNAL).read_text())
    for path in (tmp_path / "clean" / ex.CARD, tmp_path / "clean" / ex.RECORD,
                 result_dir / ex.CARD):
        text = path.read_text()
        assert name not in text and forgotten[0].group not in text
        assert not any(p.text[:-1] in text or p.pair_id in text for p in forgotten)
        assert internal["request"]["salt"] not in text
    card = (tmp_path / "clean" / ex.CARD).read_text()
    assert card.startswith("---\n") and "- machine-unlearning" in card
    assert "library_name: transformers" in card and "license:" in card
    digest = ex.forget_digest(ids, internal["request"]["salt"])
    assert digest in card  # the requester, who holds the salt, can check which set it was


def test_fingerprint_changes_when_one_weight_changes(result_dir, tmp_path):
    ex.export(result_dir, tmp_path / "clean")
    weights = tmp_path / "clean" / "model.safetensors"
    state = load_file(str(weights))
    key = sorted(state)[0]
    state[key] = state[key].clone()
    state[key].view(-1)[0] += 1e-3
    save_file(state, str(weights), metadata={"format": "pt"})
    check = ex.verify(tmp_path / "clean")
    assert not check["match"] and check["weights_sha256"] != check["recorded"]
    out = subprocess.run([sys.executable, "-m", "mmu_core", "verify", str(tmp_path / "clean")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and '"match": false' in out.stdout


class FakeHub:
    def __init__(self, fail=None):
        self.calls, self.fail = [], fail

    def create_repo(self, repo_id, token=None, private=None, exist_ok=False):
        self.calls.append(("create_repo", repo_id, token, private))
        if self.fail:
            raise self.fail

    def upload_folder(self, folder_path, repo_id, token=None, commit_message=None):
        self.calls.append(("upload_folder", folder_path, repo_id, token))


def test_push_sends_the_folder_privately_by_default(result_dir, tmp_path):
    ex.export(result_dir, tmp_path / "clean")
    hub = FakeHub()
    url = ex.push(tmp_path / "clean", "someone/cleaned", token="hf_secret", api=hub)
    assert url == "https://huggingface.co/someone/cleaned"
    assert hub.calls == [("create_repo", "someone/cleaned", "hf_secret", True),
                         ("upload_folder", str(tmp_path / "clean"), "someone/cleaned",
                          "hf_secret")]
    public = FakeHub()
    ex.push(tmp_path / "clean", "someone/cleaned", api=public, private=False)
    assert public.calls[0][3] is False


def test_a_refused_token_or_no_hub_gets_a_clear_message(result_dir, tmp_path):
    import httpx
    from huggingface_hub.errors import HfHubHTTPError

    ex.export(result_dir, tmp_path / "clean")
    refused = HfHubHTTPError("401", response=httpx.Response(
        401, request=httpx.Request("POST", "https://huggingface.co/api/repos/create")))
    with pytest.raises(ex.ExportError, match="refused the token") as err:
        ex.push(tmp_path / "clean", "someone/cleaned", token="hf_secret",
                api=FakeHub(fail=refused))
    assert "hf_secret" not in str(err.value)
    with pytest.raises(ex.ExportError, match="could not push") as err:
        ex.push(tmp_path / "clean", "someone/cleaned", token="hf_secret",
                api=FakeHub(fail=httpx.ConnectError("no route")))
    assert "hf_secret" not in str(err.value)
    with pytest.raises(ex.ExportError, match="owner/name"):
        ex.push(tmp_path / "clean", "no-owner", api=FakeHub())
    # the download still works: one archive of the folder
    zipped = ex.archive(tmp_path / "clean", tmp_path / "cleaned-model")
    assert zipped.is_file() and zipped.stat().st_size > 0
