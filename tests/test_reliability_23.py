"""Regression tests for the failure modes an outside adversarial pass found (issue 23, "the twelve failure modes"):
each with the input exactly as found, and the one-line error (or the working result) it must now give."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import make_tiny_planned
from PIL import Image

from lvg.cli import main
from lvg.data.imagefolder import read_layout_rows
from lvg.data.layout import Layout, LayoutError
from lvg.files import InputFileError, read_json, read_jsonl, read_yaml
from lvg.sampling import GenerationConfig

DEEP = "[" * 100000 + "]" * 100000  # as found: a RecursionError traceback
HUGE_INT = "9" * 5000  # longer than Python's 4,300-digit int conversion limit
BOM = "\ufeff"
LAYOUT = {"background": "white", "objects": [{"label": "red circle", "box": [10, 10, 26, 26]}]}


def run_cli(capsys, *argv) -> tuple[int, str]:
    """``lvg ARGV``: (exit code, stderr); any error must be exactly one ``lvg: error:`` line."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    if rc != 0:
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("lvg: error: "), err
    return rc, err


@pytest.fixture(scope="module")
def tiny_planned(tmp_path_factory) -> Path:
    return make_tiny_planned(tmp_path_factory.mktemp("planned") / "m")


@pytest.fixture
def model(tiny_planned, tmp_path) -> Path:
    """A fresh copy of the tiny planned folder, to damage."""
    return shutil.copytree(tiny_planned, tmp_path / "m")


@pytest.fixture(scope="module")
def pipe(tiny_planned):
    from lvg.pipelines import load_pipeline

    return load_pipeline(tiny_planned)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


# ---------------------------------------------------------------------- 1. JSON nested 100,000 deep


@pytest.mark.parametrize("rel", ["model_index.json", "painter/config.json", "planner/lm/config.json",
                                 "planner/plan_vocab.json"])  # fmt: skip
def test_deeply_nested_json_in_a_model_folder_names_the_file(model, capsys, rel):
    write(model / rel, DEEP)
    rc, err = run_cli(capsys, "generate", "two stars", "-o", model.parent / "o.png", "--model", model)
    assert rc == 2 and f"{model / rel}: JSON nested too deeply" in err, err


def test_deeply_nested_layout_metadata_and_yaml_name_the_file(tmp_path, capsys):
    layout = write(tmp_path / "deep.json", DEEP)
    rc, err = run_cli(capsys, "generate", "--layout", layout, "-o", tmp_path / "o.png")
    assert rc == 2 and f"{layout}: JSON nested too deeply" in err, err
    folder = tmp_path / "folder"
    write(folder / "metadata.jsonl", json.dumps({"file_name": "a.png", "text": "a red circle", **LAYOUT}) + "\n" + DEEP)
    with pytest.raises(ValueError, match=r"metadata.jsonl line 2: JSON nested too deeply"):
        read_layout_rows(folder)
    rc, err = run_cli(capsys, "train", "planner", f"imagefolder={folder}", f"train.out_dir={tmp_path / 'run'}")
    assert rc == 2 and "metadata.jsonl line 2: JSON nested too deeply" in err, err
    config = write(tmp_path / "deep.yaml", DEEP)
    rc, err = run_cli(capsys, "train", "planner", "--config", config, f"train.out_dir={tmp_path / 'run2'}")
    assert rc == 2 and f"{config}: YAML nested too deeply" in err, err
    with pytest.raises(InputFileError, match="YAML nested too deeply"):
        read_yaml(write(tmp_path / "deep2.yaml", "a: " + "[" * 200 + "]" * 200))  # parses, but deeper than 64


# ---------------------------------------------------------------------- 2. huge numbers


def test_a_box_coordinate_of_10_to_the_400_is_a_layout_error_not_an_overflow(tmp_path, capsys):
    box = [1, 1, 10**400, 5]
    with pytest.raises(LayoutError, match=r"field 'box' must hold 4 finite numbers"):
        Layout.from_dict({"background": "white", "objects": [{"label": "red circle", "box": box}]})
    text = '{"background": "white", "objects": [{"label": "red circle", "box": [1, 1, 1' + "0" * 400 + ", 5]}]}"
    rc, err = run_cli(capsys, "generate", "--layout", write(tmp_path / "big.json", text), "-o", tmp_path / "o.png")
    assert rc == 2 and "big.json: object 0 (red circle): field 'box' must hold 4 finite numbers" in err, err
    assert len(err) < 1000  # the 401-digit number is cut


def test_integers_longer_than_4300_digits_name_the_file(tmp_path, model, capsys):
    text = '{"background": "white", "objects": [{"label": "red circle", "box": [1, 1, ' + HUGE_INT + ", 5]}]}"
    layout = write(tmp_path / "huge.json", text)
    rc, err = run_cli(capsys, "generate", "--layout", layout, "-o", tmp_path / "o.png")
    assert rc == 2 and f"{layout}: a number has more than 4300 digits" in err, err
    cfg = model / "painter" / "config.json"
    write(cfg, cfg.read_text().replace('"width": ', f'"width": {HUGE_INT}, "_w": ', 1))
    rc, err = run_cli(capsys, "generate", "two stars", "-o", tmp_path / "o.png", "--model", model)
    assert rc == 2 and f"{cfg}: a number has more than 4300 digits" in err, err


def test_a_float_field_given_10_to_the_400_names_the_field(model, capsys):
    cfg = model / "painter" / "config.json"
    data = json.loads(cfg.read_text())
    write(cfg, json.dumps({**data, "margin": 10**400}))
    rc, err = run_cli(capsys, "generate", "two stars", "-o", model.parent / "o.png", "--model", model)
    assert rc == 2 and f"{cfg}: field 'margin': expected a number in float range" in err, err


# ---------------------------------------------------------------------- 3. prompts that are not valid text


@pytest.mark.parametrize("argv", [("generate", "a red \udcff circle", "-o", "OUT"), ("plan", "a red \udcff circle")])
def test_a_non_utf8_byte_in_a_cli_prompt_is_one_line(tiny_planned, tmp_path, capsys, argv):
    # what Python makes of `lvg generate $'a red \xff circle'`: argv decoded with surrogateescape
    argv = [str(tmp_path / "o.png") if a == "OUT" else a for a in argv]
    rc, err = run_cli(capsys, *argv, "--model", tiny_planned)
    assert rc == 2 and "the prompt holds an invalid character U+DCFF at position 6 (the byte 0xff" in err, err


def test_a_non_utf8_byte_in_a_question_is_one_line(tiny_planned, tmp_path, capsys):
    image = tmp_path / "i.png"
    Image.new("RGB", (64, 64), "white").save(image)
    rc, err = run_cli(capsys, "ask", image, "how many \udcff?", "--model", tiny_planned)
    assert rc == 2 and "the question holds an invalid character U+DCFF" in err, err


def test_the_api_refuses_lone_surrogates_and_non_strings_with_a_value_error(pipe):
    with pytest.raises(ValueError, match=r"the prompt holds an invalid character U\+D800 at position 2"):
        pipe("a \ud800")
    with pytest.raises(ValueError, match=r"the question holds an invalid character U\+D800 at position 0"):
        pipe.answer(Image.new("RGB", (64, 64)), "\ud800")
    with pytest.raises(ValueError, match="prompt must be a string or a list of strings, got int"):
        pipe(5)  # was a TypeError traceback


# ---------------------------------------------------------------------- 6. temperatures that underflow float32


def test_temperatures_that_underflow_float32_are_refused_everywhere(model, capsys, tmp_path):
    with pytest.raises(ValueError, match=r"temperature must be 0 \(greedy\) or at least 1e-06"):
        GenerationConfig(temperature=1e-39)
    assert GenerationConfig(temperature=0).temperature == 0 and GenerationConfig(temperature=1e-6).temperature == 1e-6
    rc, err = run_cli(capsys, "generate", "two stars", "-o", tmp_path / "o.png", "--temperature", "1e-39",
                      "--model", model)  # fmt: skip
    assert rc == 2 and "--temperature must be 0 (greedy) or at least 1e-06" in err, err
    index = model / "model_index.json"
    data = json.loads(index.read_text())
    write(index, json.dumps({**data, "generation_config": {**data.get("generation_config", {}), "temperature": 1e-39}}))
    rc, err = run_cli(capsys, "generate", "two stars", "-o", tmp_path / "o.png", "--model", model)
    assert rc == 2 and f"{index}: generation_config: temperature must be 0 (greedy)" in err, err


def test_the_smallest_temperature_allowed_samples_a_layout(pipe):
    (lay,) = pipe.plan("a red circle", temperature=1e-6, seed=0)
    assert isinstance(lay, Layout)


def test_the_server_refuses_an_underflowing_temperature_with_422():
    from test_serve import GEN, serve

    with serve() as client:
        r = client.post(GEN, json={"prompt": "a red circle", "temperature": 1e-39})
    assert r.status_code == 422 and "temperature must be 0 (greedy)" in r.json()["error"]["message"], r.text


# ---------------------------------------------------------------------- 7. special files


@needs_fifo
def test_fifos_and_devices_are_refused_without_reading(tmp_path, capsys):
    pipe_file = fifo(tmp_path / "fifo")
    for path in (pipe_file, "/dev/urandom", "/dev/zero"):  # as found: a hang, a hang, out of memory
        if not Path(path).exists():
            continue
        rc, err = run_cli(capsys, "generate", "--layout", path, "-o", tmp_path / "o.png")
        assert rc == 2 and f"{path} is a " in err and "not a regular file" in err, err
    rc, err = run_cli(capsys, "generate", "--prompts", pipe_file, "--out-dir", tmp_path / "out")
    assert rc == 2 and f"{pipe_file} is a FIFO (named pipe), not a regular file" in err, err
    with pytest.raises(InputFileError, match="is a folder, not a regular file"):
        read_json(tmp_path)
    from lvg.worlds.shapes.benchmark import load_prompts  # `lvg eval shapes --prompts FILE`

    with pytest.raises(InputFileError, match=r"is a FIFO \(named pipe\)"):
        load_prompts(pipe_file)


@needs_fifo
def test_an_imagefolder_file_name_that_is_a_fifo_is_refused(tmp_path):
    from lvg.images import ImageFileError, open_image

    folder = tmp_path / "folder"
    write(folder / "metadata.jsonl", json.dumps({"file_name": "a.png", "text": "a red circle", **LAYOUT}) + "\n")
    fifo(folder / "a.png")
    (row,) = read_layout_rows(folder)
    with pytest.raises(ImageFileError, match=r"a\.png is a FIFO \(named pipe\), not a regular file"):
        open_image(row["file_name"])  # what painter training reads each row's image with


def test_files_over_the_size_cap_are_refused(tmp_path):
    big = write(tmp_path / "big.json", "[" + " " * 2000 + "]")
    with pytest.raises(InputFileError, match=r"big\.json is 2002 bytes; at most 1000 are read"):
        read_json(big, max_bytes=1000)


# ---------------------------------------------------------------------- 10. validate after rounding


def test_a_box_that_rounds_to_zero_width_is_refused_and_every_layout_round_trips():
    objs = [{"label": "red circle", "box": [5, 5, 5.00001, 21]}]
    with pytest.raises(LayoutError, match=r"field 'box' \[5, 5, 5.00001, 21\] must satisfy 0 <= x0 < x1"):
        Layout.from_dict({"background": "white", "objects": objs})
    lay = Layout.from_dict({"background": "white", "objects": [{"label": "red circle", "box": [5, 5, 5.00006, 21]}]})
    assert Layout.from_json(lay.to_json()) == lay  # kept as 5.0001: its own JSON reads back


# ---------------------------------------------------------------------- 11. API keys


def test_api_keys_with_non_ascii_characters_are_refused_at_startup(tmp_path, capsys):
    from lvg.serve.auth import ApiKeys

    keys = write(tmp_path / "keys.txt", "# keys\nplain-key\nclé-secrète\n")
    with pytest.raises(ValueError, match=r"keys\.txt line 3: a key must be printable ASCII") as e:
        ApiKeys.from_file(keys)
    assert "secrète" not in str(e.value)  # the key itself is never printed
    rc, err = run_cli(capsys, "serve", "--api-keys-file", keys, "--port", "0")
    assert rc == 2 and "line 3: a key must be printable ASCII" in err, err
    assert len(ApiKeys.from_file(write(tmp_path / "ok.txt", "plain-key\n"))) == 1


# ---------------------------------------------------------------------- 12. smaller ones


def test_a_1_mb_label_gives_a_short_error_line(tmp_path, capsys):
    text = json.dumps({"background": "white", "objects": [{"label": "x" * 1_000_000, "box": [10, 10, 5, 26]}]})
    rc, err = run_cli(capsys, "generate", "--layout", write(tmp_path / "l.json", text), "-o", tmp_path / "o.png")
    assert rc == 2 and len(err) <= 2100 and "more characters)" in err, len(err)


def test_the_servers_error_bodies_are_capped():
    from lvg.serve.errors import error_response

    body = json.loads(error_response(422, "x" * 1_000_000).body)
    assert len(body["error"]["message"]) <= 2000 and body["detail"] == body["error"]["message"]


def test_non_utf8_metadata_and_bom_files_name_the_file_and_line(tmp_path, model, capsys):
    folder = tmp_path / "folder"
    row = json.dumps({"file_name": "a.png", "text": "a red circle", **LAYOUT})
    write(folder / "metadata.jsonl", (row + "\n" + row + "\n").encode() + b'{"text": "\xff"}\n')
    with pytest.raises(ValueError, match=r"metadata\.jsonl line 3: not UTF-8 text \(byte 0xff"):
        read_layout_rows(folder)
    write(folder / "metadata.jsonl", BOM + row + "\n")  # a UTF-8 BOM is fine
    assert len(read_layout_rows(folder)) == 1
    assert read_jsonl(write(tmp_path / "x.jsonl", BOM + '{"a": 1}\n\n{"b": 2}\n')) == [(1, {"a": 1}), (3, {"b": 2})]
    layout = write(tmp_path / "bom.json", BOM + json.dumps(LAYOUT))
    assert Layout.from_file(layout).objects[0].label == "red circle"
    index = model / "model_index.json"
    write(index, BOM + index.read_text())
    rc, _ = run_cli(capsys, "generate", "two stars", "-o", tmp_path / "o.png", "--model", model)
    assert rc == 0


def test_imagefolder_errors_that_named_no_file_name_the_line(tmp_path):
    folder = tmp_path / "folder"
    rows = [{"file_name": "a.png", "text": "a red circle", **LAYOUT},
            {"file_name": "b.png", "text": "a red circle", **LAYOUT, "canvas": 128}]  # fmt: skip
    write(folder / "metadata.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"metadata\.jsonl line 2: layout canvas 128 differs from the first row's 64"):
        read_layout_rows(folder)
    empty = {"file_name": "a.png", "text": "a white picture", "background": "white", "objects": []}
    write(folder / "metadata.jsonl", json.dumps(empty) + "\n")  # was "label_words must be ...", naming nothing
    with pytest.raises(ValueError, match=r"metadata\.jsonl: no row has any objects"):
        read_layout_rows(folder)


def test_a_layout_file_of_another_canvas_is_named(tmp_path, capsys):
    layout = write(tmp_path / "c.json", json.dumps({**LAYOUT, "canvas": 128}))
    rc, err = run_cli(capsys, "generate", "--layout", layout, "-o", tmp_path / "o.png")
    assert rc == 2 and f"{layout}: layout canvas 128 differs from this model's 64" in err, err


@pytest.mark.parametrize("name", ["../x.png", "/etc/passwd", "a/../../x.png"])
def test_a_file_name_outside_the_imagefolder_is_refused(tmp_path, name):
    folder = tmp_path / "folder"
    write(tmp_path / "x.png", b"")
    write(folder / "metadata.jsonl", json.dumps({"file_name": name, "text": "a red circle", **LAYOUT}) + "\n")
    with pytest.raises(ValueError, match=r"metadata\.jsonl line 1: field 'file_name' must be a path inside"):
        read_layout_rows(folder)


def test_a_component_symlinked_outside_the_model_folder_is_refused(model, tmp_path, capsys):
    outside = shutil.move(model / "painter", tmp_path / "painter-elsewhere")
    (model / "painter").symlink_to(outside)
    rc, err = run_cli(capsys, "generate", "two stars", "-o", tmp_path / "o.png", "--model", model)
    assert rc == 2 and "component 'painter'" in err and "outside the model folder" in err, err
    (model / "painter").unlink()
    shutil.move(outside, model / "inside-copy")
    (model / "painter").symlink_to("inside-copy")  # a link that stays inside is fine
    assert run_cli(capsys, "generate", "two stars", "-o", tmp_path / "o.png", "--model", model)[0] == 0


def test_painting_a_layout_never_ignores_verify_or_rerank(pipe):
    layout = Layout.from_dict(LAYOUT)
    with pytest.raises(ValueError, match=r"verify=2 and rerank=1 check images against their prompt"):
        pipe(layout=layout, verify=2)
    with pytest.raises(ValueError, match=r"rerank=3"):
        pipe(layout=layout, rerank=3)
    assert len(pipe(layout=layout).images) == 1


# ---------------------------------------------------------------------- 8. slow clients


class ServerThread:
    """``lvg serve``'s uvicorn server (:func:`lvg.serve.server.build_server`) over a fake pipeline, in a thread."""

    def __init__(self, **settings) -> None:
        from test_serve import FakePipeline

        from lvg.serve.app import ServeSettings, create_app
        from lvg.serve.server import build_server

        s = ServeSettings(port=_free_port(), **settings)
        self.port = s.port
        self.server = build_server(s, create_app(s, pipeline=FakePipeline()))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=20)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the socket's timeout bounds the wait)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


BODY = json.dumps({"prompt": "a red circle", "seed": 1}).encode()
HEAD = (b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(BODY))  # fmt: skip


def test_partial_headers_and_a_partial_body_time_out_with_408():
    with ServerThread(header_timeout_s=0.5, body_timeout_s=0.5) as srv:
        with srv.connect() as a, srv.connect() as b, srv.connect() as c:
            a.sendall(HEAD[:30])  # headers never finished (as found: open for over 130 s)
            b.sendall(HEAD + BODY[:5])  # a body never finished
            c.sendall(HEAD + BODY)  # a whole request still works
            got_a, got_b = _read_all(a), _read_all(b)  # both closed by the server
            assert got_a.startswith(b"HTTP/1.1 408"), got_a
            assert got_b.startswith(b"HTTP/1.1 408") and b"did not arrive within 0.5 s" in got_b, got_b
            assert c.recv(65536).startswith(b"HTTP/1.1 200"), "a whole request is answered"


def test_sigterm_with_a_stalled_body_exits_at_once_without_a_traceback(caplog):
    caplog.set_level(logging.INFO)
    with ServerThread(request_timeout_s=60, body_timeout_s=120) as srv:  # grace period 65 s
        with srv.connect() as s:
            s.sendall(HEAD + BODY[:5])
            time.sleep(0.3)
            srv.server.handle_exit(15, None)  # what SIGTERM does
            got = _read_all(s)
            srv.thread.join(timeout=30)
            assert not srv.thread.is_alive(), "the stalled body held up the shutdown"
    assert got.startswith(b"HTTP/1.1 503") and b"shutting down" in got, got
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "CancelledError" not in logged and "Traceback" not in logged and "Cancel " not in logged, logged
