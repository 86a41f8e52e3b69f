"""The byte-level BPE caption tokenizer."""

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from lvg.tokenizers.text import SPECIAL_TOKENS, load_text_tokenizer, save_text_tokenizer, train_text_tokenizer
from lvg.worlds.shapes.captions import caption_corpus

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "shapes-default" / "text_tokenizer"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tok = train_text_tokenizer(caption_corpus(1500, seed=0), vocab_size=400)
    path = tmp_path_factory.mktemp("tok")
    save_text_tokenizer(tok, path)
    return tok, path


def test_special_tokens_come_first(tiny):
    tok, _ = tiny
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == ("<pad>", "<bos>", "<eos>")
    ids = tok("<bos> a red circle <boi>")["input_ids"]
    assert ids[0] == 1 and ids[-1] == 3  # specials are atomic


@pytest.mark.parametrize(
    "text",
    [
        "a small red circle to the left of a large blue square",
        "一个小的红色圆形在一个大的蓝色正方形的左边，白色背景",
        "free text: a purple hippo 🦛 riding a bicycle, 自行车!",
    ],
)
def test_any_text_round_trips(tiny, text):
    tok, _ = tiny
    assert tok.decode(tok(text)["input_ids"]) == text


def test_chinese_merges_stay_inside_characters(tiny):
    tok, _ = tiny
    pieces = [tok.convert_tokens_to_string([t]) for t in tok.tokenize("一个红色圆形")]
    assert all(len(p) == 1 for p in pieces)  # one token per character: attributes never fuse


def test_saved_folder_loads_with_transformers(tiny):
    tok, path = tiny
    assert (path / "tokenizer.json").is_file()
    for loaded in (
        AutoTokenizer.from_pretrained(path),
        PreTrainedTokenizerFast(tokenizer_file=str(path / "tokenizer.json")),
        load_text_tokenizer(path),
    ):
        assert loaded("a red circle")["input_ids"] == tok("a red circle")["input_ids"]


def test_shipped_tokenizer():
    tok = load_text_tokenizer(SHIPPED)
    assert tok.convert_tokens_to_ids("<eoi>") == 4 and tok.pad_token_id == 0
    assert len(tok("a large orange square on a black background")["input_ids"]) <= 10


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_text_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError):
        load_text_tokenizer(tmp_path)
    gpt = json.loads((SHIPPED / "tokenizer.json").read_text())
    gpt["added_tokens"] = [t for t in gpt["added_tokens"] if t["content"] != "<boi>"]
    gpt["model"]["vocab"].pop("<boi>")
    (tmp_path / "tokenizer.json").write_text(json.dumps(gpt))
    with pytest.raises(ValueError, match="<boi>"):
        load_text_tokenizer(tmp_path)
    with pytest.raises(ValueError):
        train_text_tokenizer(caption_corpus(10), vocab_size=100)
