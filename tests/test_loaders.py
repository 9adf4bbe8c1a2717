import json
import shutil

import pytest

from mmu_core.data.loaders import (DataError, load_karpathy, load_mllmu, load_snli_ve,
                                   open_image, read_id_list)
from mmu_core.data.scenarios import load_scenario


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(DataError, match="nope.json"):
        load_karpathy(tmp_path / "nope.json")
    with pytest.raises(DataError, match="missing.parquet"):
        load_mllmu(tmp_path / "missing.parquet")


def test_missing_field_names_file_and_field(tmp_path):
    f = tmp_path / "train.json"
    f.write_text(json.dumps([{"image": "a.png"}]))
    with pytest.raises(DataError, match=r"train\.json.*'caption'"):
        load_karpathy(f)
    f.write_text(json.dumps([{"image": "a.png", "caption": ""}]))
    with pytest.raises(DataError, match="caption"):
        load_karpathy(f)


def test_bad_ve_label(tmp_path):
    f = tmp_path / "ve.json"
    f.write_text(json.dumps([{"image": "1", "sentence": "x", "label": "maybe"}]))
    with pytest.raises(DataError, match=r"ve\.json.*'label'"):
        load_snli_ve(f, tmp_path)


def test_corrupt_and_missing_images_name_the_file(tmp_path, tiny_world):
    root = tmp_path / "w"
    shutil.copytree(tiny_world, root)
    victim = sorted((root / "flickr30k" / "flickr30k-images").iterdir())[0]
    victim.write_bytes(b"not a png at all")
    pairs = load_karpathy(root / "flickr30k" / "flickr30k_train.json")
    bad = next(p for p in pairs if p.image == str(victim))
    with pytest.raises(DataError, match=f"{victim.name}.*'image'.*not a readable image"):
        open_image(bad)
    victim.unlink()
    with pytest.raises(DataError, match=f"{victim.name}.*does not exist"):
        open_image(bad)


def test_not_json(tmp_path):
    f = tmp_path / "x.json"
    f.write_text("{oops")
    with pytest.raises(DataError, match="not valid JSON"):
        load_karpathy(f)


def test_forget_list_errors(tmp_path, tiny_world):
    sc = load_scenario(tiny_world, "copyright")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(DataError, match="empty"):
        read_id_list(empty)
    with pytest.raises(DataError, match="not in the copyright training data"):
        sc.split(["S99999"])
    with pytest.raises(DataError, match="empty"):
        sc.split([])
    with pytest.raises(DataError, match="whole training set"):
        sc.split([p.pair_id for p in sc.train])


def test_user_input_checks(tmp_path):
    from PIL import Image

    from mmu_core.data.inputs import InputError, check_user_text, read_user_image

    bomb = tmp_path / "bomb.png"
    Image.new("L", (7000, 7000)).save(bomb)  # 49 MP, a few KB on disk
    with pytest.raises(InputError, match="too many pixels"):
        read_user_image(str(bomb))
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (6 * 1024 * 1024))
    with pytest.raises(InputError, match="limit is 5 MB"):
        read_user_image(str(big))
    with pytest.raises(InputError, match="upload an image"):
        read_user_image(None)
    with pytest.raises(InputError, match="empty"):
        check_user_text(" \n")
    assert check_user_text("  a red circle. ") == "a red circle."
