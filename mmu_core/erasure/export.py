"""Take the cleaned model home: a folder that `BlipForImageTextRetrieval.from_pretrained` and
`load_backbone` both load, with a model card in Hugging Face's format, a weight fingerprint
a deployer can check (`verify`), and an optional push to the Hub.

What leaves the machine says what was done, never what was forgotten: the card and the
public record hold the method, its resolved settings, how many pairs were forgotten and a
salted SHA-256 of their ids (the salt stays in the internal record), aggregate metrics,
versions and git revision; no text, no image, no id.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
from pathlib import Path

from mmu_core.metrics.provenance import provenance

CARD = "README.md"
RECORD = "unlearning.json"  # the card's content, machine-readable
INTERNAL = "forget_result.json"  # what `forget --out` keeps for the requester: ids, salt
# licences of the real checkpoints the factory knows; the embedded default has none stated
LICENSES = {f"Salesforce/blip-itm-{s}-{d}": "bsd-3-clause"
            for s in ("base", "large") for d in ("coco", "flickr")}


class ExportError(RuntimeError):
    """A push or an export that cannot be done, with what to do about it."""


def weight_fingerprint(folder: str | Path) -> str:
    """SHA-256 over the folder's safetensors files (names and bytes): what a deployer
    recomputes to check that the model they serve is this one."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise ExportError(f"{folder}: no safetensors files to fingerprint")
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def state_fingerprint(bb) -> str:
    """SHA-256 over a model's weights in memory (names and values): the base model's hash,
    whatever folder or hub id it came from."""
    h = hashlib.sha256()
    for name, tensor in sorted(bb.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def forget_digest(ids, salt: str) -> str:
    """Salted SHA-256 of the forgotten ids: proves which set was meant to whoever holds the
    salt, reveals nothing to whoever does not."""
    return hashlib.sha256((salt + "\n" + "\n".join(sorted(set(ids)))).encode()).hexdigest()


def new_salt() -> str:
    return secrets.token_hex(16)


def public_record(internal: dict, weights_sha256: str) -> dict:
    """The card's content from a `forget` result: nothing that names a forgotten pair."""
    req, info = internal["request"], internal["unlearning"]
    metrics = internal.get("metrics") or {}
    return {
        "base_model": req["base_model"], "base_model_weights_sha256": req["base_weights"],
        "weights_sha256": weights_sha256, "scenario": req["scenario"],
        "method": info["method"], "settings": info.get("resolved_settings", {}),
        "forgotten": {"entries": len(set(req["forget_ids"])),
                      "pairs": info["forget_scores"]["pairs"] if "forget_scores" in info else None,
                      "ids_salted_sha256": forget_digest(req["forget_ids"], req["salt"])},
        "requests": req.get("requests"),  # counts and methods, one after another
        "forget_pairs_scores": info.get("forget_scores"),
        "cost": {k: info.get(k) for k in ("seconds", "steps", "grad_evals") if k in info},
        "metrics_after": metrics.get("headline"),
        "metrics_retrain": internal.get("retrain_metrics"),
        "audits": internal.get("audits"),
        "provenance": {k: internal.get("provenance", {}).get(k) for k in ("versions", "git")},
    }


def _table(d: dict | None) -> str:
    if not d:
        return "not computed"
    return "\n".join(["| | |", "|---|---|"] + [f"| {k} | {v:.2f} |" if isinstance(v, float)
                                              else f"| {k} | {v} |" for k, v in d.items()])


def model_card(record: dict) -> str:
    base = record["base_model"]
    licence = LICENSES.get(base, "other")
    front = ["---", f"base_model: {base}" if "/" in base else "# base_model: " + base,
             "library_name: transformers", f"license: {licence}", "tags:",
             "- machine-unlearning", "- blip", "- image-text-retrieval", "- mmu", "---"]
    f, s = record["forgotten"], record.get("forget_pairs_scores") or {}
    moved = (f"mean ITM match {s['itm_before']:.3f} -> {s['itm_after']:.3f}, ITC cosine "
             f"{s['itc_before']:.3f} -> {s['itc_after']:.3f}"
             + (" (UNTOUCHED: nothing was forgotten)" if s.get("untouched") else "")) if s else "-"
    body = [
        f"# {base}, with {f['entries']} forget-list entries unlearned ({record['method']})", "",
        f"An unlearned copy of `{base}` (weights SHA-256 `{record['base_model_weights_sha256']}`)"
        f", made by mmu (multimodal machine unlearning) with the `{record['method']}` method "
        f"on the `{record['scenario']}` scenario.", "",
        "## Check the weights", "",
        f"SHA-256 over this folder's safetensors files: `{record['weights_sha256']}`. "
        "Recompute it with `python -m mmu_core verify <folder>`.", "",
        "## What was forgotten", "",
        f"{f['entries']} forget-list entries ({f['pairs']} pairs scored). Their ids are not "
        f"published; their salted SHA-256 is `{f['ids_salted_sha256']}` (the requester keeps "
        "the salt). Forgetting pairs, before -> after: " + moved + "."
        + _requests_note(record.get("requests")), "",
        "## Method and settings (resolved values)", "", "```json",
        json.dumps({"method": record["method"], **record["settings"]}, indent=1), "```", "",
        "Cost: " + ", ".join(f"{k} {v}" for k, v in record["cost"].items()), "",
        "## Metrics after unlearning", "", _table(record["metrics_after"]), "",
        "## Retrain reference", "", _table(record["metrics_retrain"]), "",
        "## Audits", "", "not computed" if not record["audits"] else
        "```json\n" + json.dumps(record["audits"], indent=1) + "\n```", "",
        "## Provenance", "", "```json", json.dumps(record["provenance"], indent=1), "```", ""]
    return "\n".join(front + [""] + body)


def _requests_note(requests: list | None) -> str:
    if not requests or len(requests) < 2:
        return ""
    steps = "; ".join(f"{i}) {r['entries']} with `{r['method']}`"
                      for i, r in enumerate(requests, 1))
    return (f" They were forgotten in {len(requests)} requests, each on top of the one "
            f"before: {steps}. The scores above are the last request's; the method and "
            "settings below are its own.")


def write_card(folder: str | Path, internal: dict) -> dict:
    """Fingerprint the model in `folder` and write its card and public record there."""
    folder = Path(folder)
    record = public_record(internal, weight_fingerprint(folder))
    (folder / RECORD).write_text(json.dumps(record, indent=1))
    (folder / CARD).write_text(model_card(record))
    return record


def export(result_dir: str | Path, out: str | Path) -> dict:
    """A clean folder from a `forget --out` result: the model files, the card, the public
    record; not the internal record (it names the forgotten ids)."""
    result_dir, out = Path(result_dir), Path(out)
    internal_path = result_dir / INTERNAL
    if not internal_path.is_file():
        raise ExportError(f"{result_dir}: no {INTERNAL}; export a folder written by "
                          "`python -m mmu_core forget --out`")
    internal = json.loads(internal_path.read_text())
    if out.resolve() == result_dir.resolve():
        raise ExportError("export to a new folder: the result folder keeps the internal record")
    out.mkdir(parents=True, exist_ok=True)
    for f in result_dir.iterdir():
        if f.is_file() and f.name not in (INTERNAL, CARD, RECORD):
            shutil.copy2(f, out / f.name)
    return write_card(out, internal)


def export_outcome(outcome, folder: str | Path, model_id: str, comparison: dict | None = None,
                   salt: str | None = None, audit: dict | None = None) -> tuple[dict, dict]:
    """The app's forget request as a clean folder (model + card): (public record, internal
    record). The internal one names the forgotten ids and the salt: keep it for the
    requester, never in the folder."""
    from mmu_core.erasure.audit import public_summary

    folder = Path(folder)
    outcome.unlearned.save_pretrained(folder)
    models = (comparison or {}).get("models", {})
    internal = {"request": {"base_model": model_id,
                            "base_weights": state_fingerprint(outcome.shipped),
                            "scenario": outcome.scenario,
                            # every pair forgotten so far: a sequence's union
                            "forget_ids": outcome.forgotten_ids,
                            "requests": [{"method": m, "entries": len(pairs)} for m, pairs
                                         in zip(outcome.methods, outcome.history)],
                            "salt": salt or new_salt(), "taught_first": outcome.taught},
                "unlearning": outcome.info,
                "metrics": {"headline": models.get("unlearned")} if models else None,
                "retrain_metrics": models.get("retrained"),
                "audits": public_summary(audit) if audit else None,
                "provenance": provenance()}
    return write_card(folder, internal), internal


def verify(folder: str | Path) -> dict:
    """Recompute the fingerprint and compare it with the one the card records."""
    folder = Path(folder)
    got = weight_fingerprint(folder)
    record_path = folder / RECORD
    recorded = json.loads(record_path.read_text())["weights_sha256"] \
        if record_path.is_file() else None
    return {"folder": str(folder), "weights_sha256": got, "recorded": recorded,
            "match": recorded == got}


def archive(folder: str | Path, out_base: str | Path) -> Path:
    """One zip of the folder (what the app offers for download)."""
    return Path(shutil.make_archive(str(out_base), "zip", root_dir=str(folder)))


def push(folder: str | Path, repo_id: str, token: str | None = None, private: bool = True,
         api=None) -> str:
    """Create `repo_id` (private unless asked) and upload the folder. The token is passed
    to the client only: never logged, stored or echoed, also not in error messages."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise ExportError(f"repository id {repo_id!r} should read 'owner/name'")
    api = api or HfApi()
    try:
        api.create_repo(repo_id, token=token, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, token=token,
                          commit_message="Unlearned model exported by mmu")
    except HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in (401, 403):
            raise ExportError(f"the Hub refused the token for {repo_id} (HTTP {status}): "
                              "check that it is valid and has write access") from None
        raise ExportError(f"the Hub refused the push to {repo_id} (HTTP {status})") from None
    except Exception as err:  # noqa: BLE001 - no network, DNS, refused, no token at all
        raise ExportError(f"could not push to the Hub ({type(err).__name__}); the folder is "
                          f"still at {folder}") from None
    return f"https://huggingface.co/{repo_id}"
