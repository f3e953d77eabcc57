"""Bad files and bad input end in one line naming the file and the key, never a traceback, a
crash or gigabytes of memory: YAML alias bombs and wrong types, file names that are not UTF-8,
a dataset left half-made by a kill, runs that produce nothing, and a fuzz test over the YAML
loaders and the dataset readers (issue 22)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edge_app.cli import main
from edge_app.dataset.formats import read_dataset
from edge_app.dataset.info import format_summary, summarize
from edge_app.dataset.meta import meta_for, read_meta, write_meta
from edge_app.dataset.writer import DatasetWriter
from edge_app.errors import DatasetError, SpecError, UserError
from edge_app.tasks.safe_yaml import MAX_DEPTH, load_yaml
from edge_app.tasks.spec import load_task

from helpers import capture_sim, fuzz_settings, write_class_tree, write_image

# 9**6 (531441) strings from 379 bytes; the real one reached 3 GB with a few more levels.
BOMB = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n'
        'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n'
        'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n')


def one_line(err: pytest.ExceptionInfo, *parts: str) -> str:
    """The error's message, checked to be one printable line holding ``parts``."""
    message = str(err.value)
    assert "\n" not in message and len(message) < 600, message
    message.encode("utf-8")   # printable: no lone surrogates from file names
    for part in parts:
        assert part in message, (part, message)
    return message


# -- safe YAML ----------------------------------------------------------------------------
@pytest.mark.parametrize("tail", ["name: *f\nkind: classification\nclasses: [a, b]\n",
                                  "name: t\nkind: classification\nclasses: *f\n"])
def test_task_yaml_alias_bomb_is_refused_fast(tmp_path, tail):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB + tail)
    with pytest.raises(SpecError) as err:
        load_task(str(path))
    # refused at the first anchor (line 1), before any alias is expanded or walked
    one_line(err, str(path), "(line 1)", "anchors and aliases")


def test_dataset_yaml_alias_bomb_is_refused(tmp_path):
    root = write_class_tree(tmp_path / "ds", {"a": 1, "b": 1})
    (root / "dataset.yaml").write_text(BOMB + "kind: classification\nclasses: *f\n")
    with pytest.raises(DatasetError) as err:
        read_dataset(root)
    one_line(err, str(root / "dataset.yaml"), "anchors and aliases")


def test_even_a_harmless_anchor_is_refused(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("name: &n t\nkind: classification\nclasses: [a, b]\ndescription: *n\n")
    with pytest.raises(SpecError, match="anchors and aliases"):
        load_task(str(path))


BAD_TASKS = [
    ("name: [1, 2]\nkind: classification\nclasses: [a, b]\n", "key 'name'", "expected text"),
    ("name: {a: 1}\nkind: classification\nclasses: [a, b]\n", "key 'name'", "expected text"),
    ("name: true\nkind: classification\nclasses: [a, b]\n", "key 'name'", "expected text"),
    ("name: ''\nkind: classification\nclasses: [a, b]\n", "key 'name'", "empty"),
    ("name: t\nkind: [a, b]\nclasses: [a, b]\n", "key 'kind'", "expected text"),
    ("name: t\nkind: classification\nclasses: 5\n", "key 'classes'", "must be a list"),
    ("name: t\nkind: classification\nclasses: [[a], b]\n", "key 'classes'", "entry 1"),
    ("name: t\nkind: classification\nclasses: [a, {b: 1}]\n", "key 'classes'", "entry 2"),
    ("name: t\nkind: classification\nclasses: [a, b]\nsubject: [hand]\n", "key 'subject'", "expected text"),
    ("name: t\nkind: classification\nclasses: [a, b]\ndescription: [x]\n", "key 'description'",
     "expected text"),
    ("name: t\nkind: classification\nclasses: [a, b]\nflip: [1]\n", "key 'flip'", "true or false"),
    ("name: t\nkind: classification\nclasses: [a, b]\nsim: {scene: [hand]}\n", "key 'sim.scene'",
     "expected text"),
    ("name: t\nkind: classification\nclasses: [a, b]\nsim: {scene: hand, labels: {a: [x], b: y}}\n",
     "key 'sim.labels.a'", "expected text"),
    ("name: t\nkind: classification\nclasses: [a, b]\ntrain: {arch: 5}\n", "key 'train.arch'",
     "expected text"),
    ("name: t\nkind: classification\nclasses: [a, b]\ntrain: {epochs: 2.5}\n", "key 'train.epochs'",
     "whole number"),
    ("name: t\nkind: classification\nclasses: [a, b]\ntrain: {group: '('}\n", "key 'train.group'",
     "regular expression"),
    ("name: t\nkind: classification\nclasses: [a, b]\ntrain: {input_size: [1, 2, 3]}\n",
     "key 'train.input_size'", "between 32 and 2048"),
    ("name: t\nkind: classification\nclasses: [a, b]\ntrain: [epochs]\n", "key 'train'", "mapping"),
    ("- name\n- kind\n", "", "must be a mapping"),
    ("name: t\nkind: classification\nclasses: [a, b]\ndescription: 2020-13-45\n", "", "not valid YAML"),
    ("name: t\nkind: classification\nclasses: [a, b]\n" + "x: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5),
     "", "nested more than"),
]


@pytest.mark.parametrize("text,key,hint", BAD_TASKS)
def test_task_yaml_types_are_checked(tmp_path, text, key, hint):
    path = tmp_path / "my.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_task(str(path))
    one_line(err, str(path), key, hint)


def test_task_yaml_not_utf8_or_too_big(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\u00e9\nkind: classification\nclasses: [a, b]\n".encode("latin-1"))
    with pytest.raises(SpecError) as err:
        load_task(str(path))
    one_line(err, str(path), "not UTF-8", "offset 9")
    big = tmp_path / "big.yaml"
    big.write_text("name: t\n# " + "x" * (2 << 20) + "\n")
    with pytest.raises(SpecError) as err:
        load_task(str(big))
    one_line(err, str(big), "not a configuration file")


def test_numbers_as_names_and_builtins_still_load(tmp_path):
    path = tmp_path / "count.yaml"
    path.write_text("name: 2024\nkind: classification\nclasses: [1, 2, 3]\ndescription:\n")
    task = load_task(str(path))
    assert task.name == "2024" and task.classes == ("1", "2", "3") and task.description == ""
    for config in sorted(Path(load_task("thumbs").path).parent.glob("*.yaml")):
        assert load_task(str(config)).name


BAD_META = [
    ("kind: [a, b]\n", "key 'kind'", "is not one of"),
    ("kind: classification\nclasses: 5\n", "key 'classes'", "list of names"),
    ("kind: classification\nclasses: [a, [b]]\n", "key 'classes'", "not a name"),
    ("kind: classification\ntask: [a, b]\n", "key 'task'", "expected text"),
    ("kind: classification\nformat: {x: 1}\n", "key 'format'", "expected text"),
    ("kind: classification\nversion: '1'\n", "key 'version'", "whole number"),
    ("kind: classification\nversion: 7\n", "key 'version'", "not one this edge-app reads"),
    ("kind: keypoints\npoints: [a]\ncoords: [pixels]\n", "key 'coords'", "is not one of"),
    ("kind: keypoints\npoints: [a]\nlabels_file: ../../etc/passwd\n", "key 'labels_file'",
     "inside the dataset"),
    ("kind: keypoints\npoints: [a]\nlabels_file: 3\n", "key 'labels_file'", "file name"),
    ("kind: classification\ncrops: 'yes'\n", "key 'crops'", "true or false"),
    ("kind: classification\nsource: /x\n", "key 'source'", "mapping"),
    ("format: edge-app\n", "key 'kind'", "missing"),
    ("[kind, classification]\n", "", "expected a mapping"),
]


@pytest.mark.parametrize("text,key,hint", BAD_META)
def test_dataset_yaml_types_are_checked(tmp_path, text, key, hint):
    root = write_class_tree(tmp_path / "ds", {"a": 1, "b": 1})
    (root / "dataset.yaml").write_text(text)
    with pytest.raises(DatasetError) as err:
        read_dataset(root)
    one_line(err, str(root / "dataset.yaml"), key, hint)


def test_dataset_yaml_not_utf8(tmp_path):
    root = write_class_tree(tmp_path / "ds", {"a": 1, "b": 1})
    (root / "dataset.yaml").write_bytes(b"kind: classification\nclasses: [\xe9t\xe9, b]\n")
    with pytest.raises(DatasetError) as err:
        read_meta(root)
    one_line(err, "dataset.yaml", "not UTF-8")


def test_every_yaml_read_goes_through_the_safe_loader():
    """No module reads YAML with PyYAML directly (edge_app/tasks/safe_yaml.py is the one place)."""
    repo = Path(__file__).resolve().parents[1]
    offenders = [str(p.relative_to(repo)) for package in ("edge_app", "train", "export")
                 for p in (repo / package).rglob("*.py")
                 if p.name != "safe_yaml.py" and ("yaml.safe_load" in p.read_text()
                                                  or "yaml.load(" in p.read_text())]
    assert offenders == []


# -- datasets -----------------------------------------------------------------------------
def bytes_name(folder: Path, name: bytes) -> bytes:
    """Create a file named by ``name`` (bytes that need not be UTF-8) holding a real JPEG."""
    data = write_image(folder / "tmp_source.jpg").read_bytes()
    (folder / "tmp_source.jpg").unlink()
    path = os.path.join(os.fsencode(str(folder)), name)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def test_non_utf8_file_names_are_reported_and_skipped(tmp_path):
    root = write_class_tree(tmp_path / "ds", {"a": 2, "b": 2})
    bytes_name(root / "a", b"\xff.jpg")
    os.mkdir(os.path.join(os.fsencode(str(root)), b"c\xfe"))
    bytes_name(root / "b", b"caf\xe9.jpg")
    ds = read_dataset(root).verify()
    assert ds.labels == ("a", "b") and len(ds.samples) == 4
    problems = [str(p) for p in ds.problems]
    assert any("\\xff.jpg" in p and "not valid UTF-8" in p for p in problems), problems
    assert any("caf\\xe9.jpg" in p for p in problems) and any("c\\xfe" in p for p in problems)
    for s in ds.samples:   # what the training feature key hashes
        str(s.path).encode("utf-8")
    text = format_summary(summarize(ds))
    text.encode("utf-8")
    assert "not valid UTF-8" in text


def test_non_utf8_name_in_the_course_layout_and_the_run_source(tmp_path):
    root = tmp_path / "course"
    write_image(root / "nose" / "10_20_a.jpg")
    bytes_name(root / "nose", b"11_21_\xff.jpg")
    ds = read_dataset(root)
    assert len(ds.samples) == 1 and "not valid UTF-8" in str(ds.problems[0])
    from edge_app.sources import open_source

    source = open_source(str(root / "nose"))   # OpenCV's imread used to crash on such a name
    source.open()
    paths = [source.read().path, source.read().path]
    assert source.read() is None and "\\xff" in paths[0] + paths[1]


@pytest.mark.slow
def test_fast_training_skips_a_non_utf8_file(tmp_path):
    pytest.importorskip("torch")
    from helpers import fast_train, train_bundle

    data = capture_sim("thumbs", tmp_path / "d", 8, 1, "128x96")
    bytes_name(next(data.glob("thumbs_up")), b"\xff\xfe.jpg")
    # With the feature cache on: its key hashes every sample's path as text.
    options = [o for o in fast_train(64, 1, "--input", "frame") if o != "--no-cache"]
    bundle = train_bundle("thumbs", data, tmp_path / "b", *options, "--cache-dir", str(tmp_path / "c"))
    assert (bundle / "bundle.json").is_file()


def test_writer_recreates_a_removed_class_folder(tmp_path):
    task = load_task("thumbs")
    writer = DatasetWriter(tmp_path / "ds", task)
    import numpy as np

    (tmp_path / "ds" / "thumbs_up").rmdir()
    path = writer.save(np.zeros((8, 8, 3), np.uint8), label="thumbs_up")
    assert path.parent == tmp_path / "ds" / "thumbs_up" and path.is_file()


def test_writer_names_the_path_it_cannot_write(tmp_path):
    import numpy as np

    task = load_task("thumbs")
    writer = DatasetWriter(tmp_path / "ds", task)
    (tmp_path / "ds" / "thumbs_up").rmdir()
    (tmp_path / "ds" / "thumbs_up").write_text("a file where the folder was")
    with pytest.raises(DatasetError) as err:
        writer.save(np.zeros((8, 8, 3), np.uint8), label="thumbs_up")
    one_line(err, str(tmp_path / "ds" / "thumbs_up"))


@pytest.mark.parametrize("task_name", ["face", "thumbs"])
def test_interrupted_first_capture_is_recovered(tmp_path, task_name):
    """A capture killed right after writing dataset.yaml leaves only that file."""
    task = load_task(task_name)
    root = tmp_path / "ds"
    root.mkdir()
    write_meta(root, meta_for(task))
    ds = read_dataset(root)
    assert ds.samples == [] and ds.labels == task.labels
    capture_sim(task_name, root, 3, 1)
    assert len(read_dataset(root).samples) == 3


def test_data_info_reports_subject_rows_that_disagree(tmp_path):
    root = capture_sim("thumbs", tmp_path / "ds", 4, 1)
    rows = (root / "subjects.jsonl").read_text().splitlines()
    assert len(rows) == 4
    assert not [p for p in summarize(read_dataset(root).verify())["problems"] if "subjects.jsonl:" in p]
    # A kill between the image and its row; a torn last line; a row of a deleted image.
    stale = dict(json.loads(rows[0]), image="thumbs_up/gone.jpg")
    (root / "subjects.jsonl").write_text("\n".join(rows[:-1] + [json.dumps(stale), '{"box": [0.1,']) + "\n")
    problems = summarize(read_dataset(root).verify())["problems"]
    assert any("1 image(s) have no row" in p for p in problems), problems
    assert any("not in the dataset, e.g. thumbs_up/gone.jpg" in p for p in problems), problems
    assert any("line(s) 5 are not whole JSON rows" in p for p in problems), problems


def test_removing_a_sample_moves_its_subject_row(tmp_path):
    from edge_app.dataset import edit

    root = capture_sim("thumbs", tmp_path / "ds", 2, 1)
    sample = read_dataset(root).samples[0]
    edit.remove(root, load_task("thumbs"), sample.path.parent.name, sample.path.name)
    assert len((root / "subjects.jsonl").read_text().splitlines()) == 1
    assert sample.path.name in (root / ".deleted" / "subjects.jsonl").read_text()
    assert not [p for p in summarize(read_dataset(root).verify())["problems"] if "subjects.jsonl:" in p]


# -- exit codes ---------------------------------------------------------------------------
def run_cli(capsys, *argv: str):
    code = main(["run", "--model", "hands", "--headless", "--subject-provider", "truth"] + list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_whose_only_image_is_unreadable_fails(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x.jpg").write_bytes(b"not a jpeg")
    code, out, err = run_cli(capsys, "--source", str(tmp_path / "src"))
    assert code == 2 and "0 frames" in out
    assert err.startswith("error: {}: no frame was read".format(tmp_path / "src")) and err.count("\n") == 1


def test_record_into_a_missing_folder_fails_up_front(tmp_path, capsys):
    code, out, err = run_cli(capsys, "--source", "sim://thumbs?count=3", "--record",
                             str(tmp_path / "missing" / "x.mp4"))
    assert code == 2
    assert out == "" and "folder {} does not exist".format(tmp_path / "missing") in err
    code, out, err = run_cli(capsys, "--source", "sim://thumbs?count=3", "--record", str(tmp_path / "x.nope"))
    assert code == 2 and "use a name ending in .mp4" in err


@pytest.mark.parametrize("query,hint", [
    ("width=-5", "width -5 is out of range"), ("width=100000&height=100000", "width 100000"),
    ("height=0", "height 0"), ("fps=-1", "fps -1"), ("count=-2", "count -2")])
def test_sim_sizes_are_checked(capsys, query, hint):
    for scene in ("thumbs", "crowd"):
        code, _, err = run_cli(capsys, "--source", f"sim://{scene}?{query}")
        assert code == 2 and hint in err and err.count("\n") == 1, err


def test_run_that_writes_everything_exits_zero(tmp_path, capsys):
    code, out, err = run_cli(capsys, "--source", "sim://thumbs?count=5&width=96&height=64",
                             "--record", str(tmp_path / "x.mp4"))
    assert code == 0 and "recorder: 5 frame(s) written" in out and err == ""


# -- fuzz ---------------------------------------------------------------------------------
try:
    from hypothesis import given
    from hypothesis import strategies as st
except ImportError:   # the Python 3.8 run installs the runtime and pytest only
    given = None

if given is not None:
    FUZZ = fuzz_settings()
    KEYS = ["name", "kind", "classes", "points", "subject", "input_size", "flip", "sim", "train",
            "description", "format", "version", "task", "coords", "labels_file", "source", "crops",
            "scene", "labels", "epochs", "arch", "group", "weights", "mode"]
    SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 30, 10 ** 30),
                        st.floats(allow_nan=True), st.sampled_from(
                            ["classification", "keypoints", "detection", "hand", "face", "thumbs_up",
                             "a", "b", "nose", "", "normalized", "pixels", "../x", "2020-01-01"]),
                        st.text(max_size=12))
    VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6),
                                                     inner, max_size=4)), max_leaves=12)
    DOCUMENTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=8)
    SNIPPETS = st.lists(st.sampled_from(
        ["name: t\n", "kind: classification\n", "kind: keypoints\n", "classes: [a, b]\n",
         "points: [nose]\n", "&x ", "*x ", "a: &x [1]\n", "b: *x\n", "[", "]", "{", "}", ": ", "- ",
         "!!binary aGk=\n", "!!python/object:os.system\n", "!!set {a}\n", "? [a]\n", "\t", "'", '"',
         "\n", "\xff", "\x00", "2020-13-45", "9" * 5000, "<<: *x\n", "%YAML 1.1\n---\n", "..."]),
        max_size=12).map("".join)

    def _dump(doc) -> bytes:
        import yaml

        return yaml.safe_dump(doc, allow_unicode=True).encode("utf-8")

    def _load_all(tmp_path: Path, data: bytes) -> None:
        """Each loader on ``data``: success, or a one-line UserError."""
        task, root = tmp_path / "fuzz.yaml", tmp_path / "fuzz_ds"
        task.write_bytes(data)
        root.mkdir(exist_ok=True)
        (root / "dataset.yaml").write_bytes(data)
        for load in (lambda: load_task(str(task)), lambda: read_meta(root),
                     lambda: load_yaml(task), lambda: summarize(read_dataset(root).verify())):
            try:
                load()
            except UserError as exc:
                assert "\n" not in str(exc)
                str(exc).encode("utf-8")

    @FUZZ
    @given(doc=DOCUMENTS)
    def test_fuzz_yaml_documents(tmp_path, doc):
        _load_all(tmp_path, _dump(doc))

    @FUZZ
    @given(text=SNIPPETS, raw=st.binary(max_size=40))
    def test_fuzz_yaml_text(tmp_path, text, raw):
        _load_all(tmp_path, text.encode("utf-8", "surrogatepass") + raw)

    NAMES = st.one_of(st.binary(min_size=1, max_size=12).filter(
        lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..")),
        st.sampled_from([b"a", b"b", b"images", b"labels.csv", b"labels.txt", b"train", b"val",
                         b"dataset.yaml", b"splits.csv", b"subjects.jsonl", b"10_20_x.jpg",
                         b"x.jpg", b"\xff.png", b"k.csv"]))
    CONTENT = st.one_of(st.binary(max_size=60), st.sampled_from([
        b"", b"image,nose_x,nose_y\nx.jpg,1,2\n", b"image,a_x,a_y\n\xff.jpg,1\n,,\n", b"a\nb\n",
        b"image,split\nx.jpg,train\n", b'{"image": "x.jpg"}\n{', b"kind: keypoints\npoints: [nose]\n",
        b"kind: classification\nclasses: [a, b]\n", b"JPEG"]), st.just(b"JPEG"))

    @st.composite
    def trees(draw):
        """Up to two levels of random names holding random bytes (or real small JPEGs)."""
        entries = draw(st.lists(st.tuples(NAMES, st.one_of(st.none(), NAMES), CONTENT),
                                min_size=1, max_size=8))
        return entries

    @FUZZ
    @given(entries=trees(), fmt=st.sampled_from(["auto", "folders", "course", "csv",
                                                  "jetson-inference", "edge-app"]))
    def test_fuzz_dataset_readers(tmp_path, entries, fmt):
        import shutil

        jpeg = write_image(tmp_path / "real.jpg").read_bytes()
        root = tmp_path / "tree"
        shutil.rmtree(str(root), ignore_errors=True)
        root.mkdir()
        base = os.fsencode(str(root))
        for top, sub, content in entries:
            data = jpeg if content == b"JPEG" else content
            path = os.path.join(base, top) if sub is None else os.path.join(base, top, sub)
            try:
                if sub is not None:
                    os.makedirs(os.path.join(base, top), exist_ok=True)
                with open(path, "wb") as fh:
                    fh.write(data)
            except OSError:   # a name used as both a file and a folder
                continue
        try:
            ds = read_dataset(root, fmt).verify()
            format_summary(summarize(ds)).encode("utf-8")
        except UserError as exc:
            assert "\n" not in str(exc)
            str(exc).encode("utf-8")
