"""Task specs: built-ins load, user YAML works, every mistake is one line naming file and key."""
from __future__ import annotations

import dataclasses

import pytest

from edge_app.errors import SpecError
from edge_app.tasks.kinds import TASK_KINDS, flip_pairs, mirror_name
from edge_app.tasks.spec import builtin_dir, builtin_tasks, load_task

COURSE = {
    "thumbs": ("classification", ("thumbs_up", "thumbs_down")),
    "emotions": ("classification", ("none", "happy", "sad", "angry")),
    "fingers": ("classification", ("1", "2", "3", "4", "5")),
    "face": ("keypoints", ("nose", "left_eye", "right_eye")),
}


@pytest.mark.parametrize("name", sorted(COURSE))
def test_course_tasks_load(name):
    spec = load_task(name)
    kind, labels = COURSE[name]
    assert spec.kind == kind and spec.labels == labels
    assert spec.sim is not None, "every course task can be simulated"
    assert spec.input_size == (224, 224)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    assert spec.count == ("fingers" if name == "fingers" else ""), "fingers counts raised fingers"
    assert bool(spec.thumb) == (name == "thumbs"), "thumbs reads the thumb's direction"


def test_builtin_configs_are_the_repo_configs():
    assert sorted(builtin_tasks()) == sorted(COURSE)
    assert (builtin_dir() / "thumbs.yaml").is_file()


def test_user_yaml_and_kind_registry(tmp_path):
    path = tmp_path / "ck.yaml"
    path.write_text("name: ckplus\nkind: classification\nclasses: [anger, happy, 3]\n"
                    "input_size: [96, 128]\n")
    spec = load_task(str(path))
    assert spec.classes == ("anger", "happy", "3")
    assert spec.input_size == (96, 128)
    assert spec.task_kind is TASK_KINDS["classification"]
    assert spec.task_kind.output_size(spec.labels) == 3
    assert TASK_KINDS["keypoints"].output_size(("a", "b")) == 4


def test_left_right_pairs():
    assert mirror_name("left_eye") == "right_eye"
    assert mirror_name("mouth_right") == "mouth_left"
    assert mirror_name("nose") == "nose"
    assert flip_pairs(("nose", "left_eye", "right_eye")) == [(1, 2)]


BAD = [
    ("name: t\nkind: classification\nclases: [a, b]\n", "key 'clases'", "did you mean 'classes'"),
    ("name: t\nkind: clasification\nclasses: [a, b]\n", "key 'kind'", "did you mean 'classification'"),
    ("name: t\nkind: classification\nclasses: [a]\n", "key 'classes'", "at least 2"),
    ("name: t\nkind: classification\nclasses: [a, a]\n", "key 'classes'", "duplicate"),
    ("name: t\nkind: classification\nclasses: [a, ../etc]\n", "key 'classes'", "folder name"),
    ("name: t\nkind: keypoints\nclasses: [a, b]\n", "key 'classes'", "use 'points'"),
    ("name: t\nkind: keypoints\npoints: [Nose]\n", "key 'points'", "lower-case"),
    ("name: t\nkind: classification\nclasses: [a, b]\ninput_size: 7\n", "key 'input_size'", "between"),
    ("name: t\nkind: classification\nclasses: [a, b]\nsubject: foot\n", "key 'subject'", "hand"),
    ("name: t\nkind: classification\nclasses: [a, b]\nsim: {scene: hand, labels: {a: thumb_up}}\n",
     "key 'sim.labels'", "no pose for class 'b'"),
    ("name: t\nkind: classification\nclasses: [a, b]\nsim: {scene: hand, labels: {a: thumb_up, b: wave}}\n",
     "key 'sim.labels'", "'wave' is not a hand pose"),
    ("name: t\nkind: keypoints\npoints: [chin]\nsim: {scene: face}\n", "key 'points'", "not drawn"),
    ("name: t\nkind: classification\nclasses: [a, b]\nsim: {scene: hnad}\n", "key 'sim.scene'",
     "did you mean 'hand'"),
    ("kind: classification\nclasses: [a, b]\n", "key 'name'", "missing"),
    ("name: t\nkind: classification\nclasses: ['1', '2']\nsubject: hand\ncount: finger\n", "key 'count'",
     "did you mean 'fingers'"),
    ("name: t\nkind: classification\nclasses: [one, two]\nsubject: hand\ncount: fingers\n", "key 'count'",
     "class 'one' is not a number of fingers from 0 to 5"),
    ("name: t\nkind: classification\nclasses: ['1', '6']\nsubject: hand\ncount: fingers\n", "key 'count'",
     "class '6'"),
    ("name: t\nkind: classification\nclasses: ['1', '2']\nsubject: face\ncount: fingers\n", "key 'count'",
     "subject: hand"),
    ("name: t\nkind: classification\nclasses: [a, b]\nsubject: hand\nthumb: {a: up}\n", "key 'thumb'",
     "class 'b' has no direction"),
    ("name: t\nkind: classification\nclasses: [a, b]\nsubject: hand\nthumb: {a: up, b: left}\n",
     "key 'thumb.b'", "use up or down"),
    ("name: t\nkind: classification\nclasses: [a, b]\nsubject: hand\nthumb: {a: up, c: down}\n",
     "key 'thumb.c'", "not a class"),
    ("name: t\nkind: classification\nclasses: [a, b]\nsubject: hand\nthumb: up\n", "key 'thumb'",
     "expected a mapping"),
    ("name: t\nkind: classification\nclasses: ['1', '2']\nsubject: hand\ncount: fingers\nthumb: {'1': up, '2': down}\n",
     "key 'thumb'", "not both"),
    ("name: t\nkind: classification\nclasses: ['1', '01']\nsubject: hand\ncount: fingers\n", "key 'count'",
     "'1' and '01' are the same count"),
    ("name: t\nkind: classification\nclasses: [a, b, c]\nsubject: hand\nthumb: {a: up, b: up, c: down}\n",
     "key 'thumb.", "already class"),
]


@pytest.mark.parametrize("text,key,hint", BAD)
def test_bad_specs_name_file_key_and_fix(tmp_path, text, key, hint):
    path = tmp_path / "my.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_task(str(path))
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message and key in message and hint in message


def test_invalid_yaml_names_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: t\nkind: [classification\n")
    with pytest.raises(SpecError, match=r"broken.yaml \(line \d+\): not valid YAML"):
        load_task(str(path))


def test_unknown_builtin_suggests():
    with pytest.raises(SpecError, match="did you mean 'thumbs'"):
        load_task("thumb")
    with pytest.raises(SpecError, match="not found"):
        load_task("missing.yaml")


def test_builtin_tasks_found_in_a_source_checkout(monkeypatch):
    import sys

    from edge_app.tasks.spec import builtin_dir, load_task

    monkeypatch.setitem(sys.modules, "edge_app.builtin_configs", None)   # not installed
    assert builtin_dir().name == "configs" and load_task("fingers").name == "fingers"


def test_a_saved_spec_keeps_what_this_release_knows():
    from edge_app.tasks.spec import parse_task

    saved = dict(load_task("thumbs").to_dict(), palm="open")    # a key of a later release
    spec = parse_task(saved, source="bundle.json", saved=True)
    assert spec.thumb == (("thumbs_up", "up"), ("thumbs_down", "down"))
    with pytest.raises(SpecError, match="key 'palm': unknown key"):
        parse_task(saved, source="my.yaml")
