"""The app, launched for real and driven through gradio_client (every api_name)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="module")
def client():
    from gradio_client import Client, handle_file  # noqa: F401

    import app

    demo = app.create_demo()
    app.launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield Client(demo.local_url, verbose=False)
    demo.close()


def test_gallery_lists_training_pairs(client):
    items = client.predict("copyright", api_name="/gallery")
    assert len(items) > 5
    assert all(item["caption"] for item in items)


def test_upload_shows_a_preview_or_a_clear_error(client, world, tmp_path):
    from gradio_client import handle_file

    img = world / "flickr30k" / "flickr30k-images" / "S00000.png"
    assert client.predict(handle_file(str(img)), api_name="/upload")
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    # Gradio's own file-type check answers first, plainly
    with pytest.raises(Exception, match="Invalid file type"):
        client.predict(handle_file(str(bad)), api_name="/upload")
    broken = tmp_path / "broken.png"
    broken.write_bytes(img.read_bytes()[:60])
    with pytest.raises(Exception, match="broken.png is not a readable image"):
        client.predict(handle_file(str(broken)), api_name="/upload")


def test_score_a_pair(client, world):
    from gradio_client import handle_file

    img = world / "flickr30k" / "flickr30k-images" / "S00000.png"
    from mmu_core.data.loaders import load_karpathy

    pairs = [p for p in load_karpathy(world / "flickr30k" / "flickr30k_train.json")
             if p.pair_id == "S00000"]
    md = client.predict(handle_file(str(img)), pairs[0].text, api_name="/score")
    assert "Match probability" in md


@pytest.mark.parametrize("kind", ["empty_text", "corrupt", "not_image", "overlong"])
def test_bad_input_gets_a_clear_message_and_the_app_keeps_serving(client, world, tmp_path,
                                                                  kind):
    from gradio_client import handle_file

    img = str(world / "flickr30k" / "flickr30k-images" / "S00000.png")
    text = "one red circle."
    expected = {"empty_text": "empty", "corrupt": "not a readable image",
                "not_image": "Invalid file type", "overlong": "characters"}[kind]
    if kind == "empty_text":
        text = "   "
    elif kind == "corrupt":
        bad = tmp_path / "broken.png"
        bad.write_bytes(Path(img).read_bytes()[:60])
        img = str(bad)
    elif kind == "not_image":
        bad = tmp_path / "notes.txt"
        bad.write_text("hello")
        img = str(bad)
    elif kind == "overlong":
        text = "word " * 200
    with pytest.raises(Exception, match=expected):
        client.predict(handle_file(img), text, api_name="/score")
    assert "Match probability" in client.predict(handle_file(
        str(world / "flickr30k" / "flickr30k-images" / "S00000.png")), "one red circle.",
        api_name="/score")
