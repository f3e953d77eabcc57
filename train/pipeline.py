"""``edge-app train`` and ``edge-app eval``: from a dataset folder to a model bundle and back."""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from edge_app.dataset.atomic import atomic_write_text, json_text
from edge_app.dataset.subjects import scan_subjects
from edge_app.errors import DatasetError, UserError
from edge_app.model.inputs import InputKind, InputPlan, auto_candidates, input_kind
from edge_app.subject.landmarks import eye_distance
from edge_app.tasks.spec import TaskSpec, load_task
from edge_app.tasks.train_config import AUTO_INPUTS, TrainConfig, build_config
from edge_app.train.bundle import load_model, write_candidate
from edge_app.train.candidate import Candidate, TrainJob
from edge_app.train.detector_baseline import detector_baseline
from edge_app.train.labelled import load_labelled
from edge_app.train.live_eval import live_evaluate
from edge_app.train.robustness import training_report
from edge_app.train.subjects import declared_crops, plan_input, report, rotation_hint

log = logging.getLogger(__name__)


def resolve_device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: this torch has no CUDA device; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:   # "Expected one of cpu, cuda, ... device type at start of ..."
        raise UserError(f"--device {name}: not a device; use auto, cpu, cuda or cuda:N")


def train(task_name: str, data: Path, out: Path, overrides: Mapping[str, Any], fmt: str = "auto",
          val_dir: Optional[Path] = None, resume: bool = False, progress: bool = True,
          cache_dir: Optional[Path] = None) -> Dict[str, Any]:
    """Train a model for ``task_name`` on ``data`` and write the bundle to ``out``; returns
    what ``bundle.json`` holds. ``--input auto`` trains the landmark model first (then texture
    for faces) and the other candidates only where it falls short (``all``: every candidate),
    and keeps the best on validation (near ties go to the kind that carries best to other
    people)."""
    import torch

    task = load_task(task_name)
    cfg = build_config(dict(task.train), overrides)
    device = resolve_device(cfg.device)
    cfg = cfg.resolved(device.type == "cuda")
    torch.manual_seed(cfg.seed)
    if cfg.weights == "none":
        log.warning("--weights none trains from scratch: fine for quick checks, expect much "
                    "lower accuracy than with ImageNet weights")
    ds = load_labelled(Path(data), task, fmt, "train", progress)
    plan, scan = _plan(ds, task, cfg, progress)
    out = Path(out).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot make the folder ({exc.strerror or exc})")
    job = TrainJob(ds, scan, plan, task, cfg, device, out, Path(data), fmt,
                   None if val_dir is None else Path(val_dir), resume, progress,
                   None if cache_dir is None else Path(cache_dir).expanduser())
    auto = cfg.input in AUTO_INPUTS
    kinds = auto_candidates(plan.subject is not None and plan.kind.subject, cfg.mode, resume,
                            plan.subject) if auto else [plan.kind]
    candidates = _train_auto(job, kinds) if auto else _train_all(job, kinds, False)
    kind = task.task_kind.training()
    best = choose_input(candidates, kind) if len(candidates) > 1 else next(iter(candidates))
    chosen = candidates[best]
    if len(candidates) > 1:
        log.info("input: validation with misses counted: %s; keeping %s", ", ".join(
            "{} {}".format(k, kind.short(c.metrics) if c.metrics else "n/a")
            for k, c in candidates.items()), best)
        chosen.plan = dataclasses.replace(chosen.plan, reason=AUTO_REASON)

    if "images" not in chosen.plan.kind.graph_inputs and (out / "last.pt").is_file():
        (out / "last.pt").unlink()   # a CNN checkpoint beside a model without a CNN resumes nothing

    robustness = training_report(chosen, job)   # the kept model under other cameras
    bundle = write_candidate(out, chosen, task, cfg, Path(data), robustness)
    log.info("bundle: %s", out)
    return bundle.to_json()


def _train_auto(job: TrainJob, kinds: List[InputKind]) -> Dict[str, Candidate]:
    """``--input auto``: the kinds without a CNN first, most general first (landmarks, then
    texture for faces), each only where the one before falls short on its own terms; the CNN
    kinds only where all of them fall short (``--input all``: always). A CNN whose backbone
    weights cannot be had is left out with its reason while another candidate stands."""
    cheap = [k for k in kinds if k.landmarks and "images" not in k.graph_inputs]
    kind = job.task.task_kind.training()
    found: Dict[str, Candidate] = {}
    for i, first in enumerate(cheap):
        rest = cheap[i + 1:] + [k for k in kinds if k not in cheap]
        # with other kinds still to try, landmarks the data cannot feed (declared crops) are a note
        found.update(_train_all(job, [first], True, bool(found) or bool(rest)))
        if first.name not in found or not rest or job.cfg.input != "auto":
            continue
        cand = found[first.name]
        if kind.good_enough(cand.metrics, cand.found_rate):
            log.info("skipped %s: %s found in %.0f%% of the images and %s on validation with %s "
                     "are enough (--input all trains them too)", ", ".join(k.name for k in rest),
                     job.plan.subject, 100 * cand.found_rate, kind.describe(cand.metrics), first.name)
            cand.plan = dataclasses.replace(cand.plan, reason=ENOUGH_REASON.format(first.name))
            return found
        log.info("%s falls short (%s found in %.0f%%, validation %s): training %s too",
                 first.name, job.plan.subject, 100 * cand.found_rate,
                 kind.describe(cand.metrics) if cand.metrics else "n/a",
                 ", ".join(k.name for k in rest))
    todo = [k for k in kinds if k not in cheap]
    if not todo:
        if not found:
            raise DatasetError(f"{job.data}: no input kind could be trained")
        return found
    try:
        found.update(_train_all(job, todo, True, bool(found)))
    except UserError as exc:
        if not found or isinstance(exc, DatasetError):
            raise
        log.warning("%s not trained (%s); keeping %s", ", ".join(k.name for k in todo),
                    str(exc).rstrip("."), ", ".join(found))
    return found


def _train_all(job: TrainJob, kinds: List[InputKind], auto: bool, have_one: bool = False
               ) -> Dict[str, Candidate]:
    """Each kind's candidate; in auto mode a kind the data cannot feed is left out with a note."""
    import torch

    found: Dict[str, Candidate] = {}
    for kind in kinds:
        plan = dataclasses.replace(job.plan, input=kind.name)
        # a second CNN on the same crops would repeat the first one's report
        quiet = "images" in kind.graph_inputs and any(
            "images" in c.plan.kind.graph_inputs for c in found.values())
        # each candidate from the same seed: its result does not depend on which trained before
        torch.manual_seed(job.cfg.seed)
        try:
            cand = kind.training().train(dataclasses.replace(job, plan=plan, quiet=quiet))
        except DatasetError as exc:   # e.g. subjects without landmarks (declared crops)
            if not auto or (not found and not have_one and kind is kinds[-1]):
                raise
            log.info("%s: not tried (%s)", kind.name, exc)
            continue
        _check_finite(cand, kind.name, job.task.task_kind.training())
        found[kind.name] = cand
        if auto:
            log.info("%s: %d images, validation %s (trained in %.1f s)", kind.name,
                     cand.train_count + len(cand.val.samples),
                     job.task.task_kind.training().describe(cand.metrics) if cand.metrics else "n/a",
                     cand.seconds)
    if not found and not have_one:
        raise DatasetError(f"{job.data}: no input kind could be trained")
    return found


def _check_finite(cand: Candidate, name: str, kind: Any) -> None:
    """A model whose validation score is not a finite number is not written (its bundle.json
    would say NaN): one line instead, and a non-zero exit."""
    if cand.metrics and not math.isfinite(kind.score(cand.metrics)):
        raise UserError(f"{name}: training stopped: the validation score is not a finite number "
                        f"({kind.describe(cand.metrics)}); check the labels for huge or broken values")


AUTO_REASON = "auto: best on validation (near ties go to landmarks, then texture, both, crop)"
ENOUGH_REASON = "auto: {} reached the bar on validation; the other candidates skipped"


def choose_input(candidates: Mapping[str, Candidate], kind: Any) -> str:
    """The input to keep: among those within the validation noise of the best score
    (``kind.tolerance``), the one that carries best to other people (the input kinds'
    ``rank``). One person's validation photos score every input near 100%; picking the first
    best kept the crop model there (58% on other people's fingers, where the landmark model
    kept now scores 95%)."""
    scores = {k: kind.overall(c.metrics, c.found_rate) for k, c in candidates.items()}
    top = max(scores.values())
    near = [k for k, c in candidates.items() if c.metrics and scores[k] >= top - kind.tolerance(c.metrics)]
    return min(near or [max(scores, key=lambda k: scores[k])], key=lambda k: input_kind(k).rank)


def _plan(ds: Any, task: TaskSpec, cfg: TrainConfig, progress: bool) -> Tuple[InputPlan, Any]:
    """Crops, landmarks or whole frames, as ``cfg.input`` and the detection rate say."""
    plan, scan = plan_input(ds, task, cfg, progress)
    if scan is not None:
        report(ds, scan, task.subject)
    auto = cfg.input in AUTO_INPUTS and plan.kind.subject   # the plan names the kind that resumes
    log.info("input: %s (%s)", cfg.input if auto else plan.input, plan.reason)
    return plan, scan


def _face_eye_distances(ds: Any, view: Any, task: TaskSpec, plan: InputPlan, progress: bool
                        ) -> Optional[Any]:
    """The eye distance (pixels) of the face found in each of the view's images, for the NME
    of datasets that do not label both eyes; None where no face detector can run."""
    import numpy as np

    if task.subject == "none" or not view.samples:
        return None
    try:
        scan = scan_subjects(ds, task.subject, plan.provider, plan.crops, progress)
    except UserError:
        return None
    by_path = {str(s.path): eye_distance(sub) for s, sub in zip(ds.samples, scan.subjects)}
    return np.array([by_path.get(str(s.path)) or np.nan for s in view.samples], np.float64)


def _rotation_hint(ds: Any, plan: InputPlan, progress: bool) -> None:
    """Warn when the evaluated pictures look turned (the scan the view made, from its cache)."""
    try:
        hint = rotation_hint(ds, scan_subjects(ds, str(plan.subject), plan.provider, plan.crops, progress))
    except UserError:
        return
    if hint:
        log.warning(hint)


def _with_baseline(metrics: Dict[str, Any], ds: Any, view: Any, task: TaskSpec, plan: InputPlan,
                   norm: Any, progress: bool) -> Dict[str, Any]:
    """The detector's own points beside the model's error, where the task's points are its."""
    base = detector_baseline(ds, view.samples, task, plan, norm, progress)
    if base is None:
        return metrics
    kind = task.task_kind.training()
    log.info("  %s alone, no training, same %d image(s) (%s): %s", base["name"], len(view.samples),
             ", ".join(base["points"]), kind.describe(base))
    return dict(metrics, baseline={k: base[k] for k in ("name", "points", "rmse_px", "nme", "nme_by",
                                                       "detection_rate", "per_point_px") if k in base})


def _answers(view: Any, outputs: Any, task: TaskSpec, kind: Any) -> List[Dict[str, Any]]:
    """Each image's answer (a class task's label; a point task's points), misses included."""
    rows: List[Dict[str, Any]] = []
    for sample, output in zip(view.samples, outputs):
        answer: Any = (kind.label_text(output, task) if task.task_kind.labels_key == "classes"
                       else [round(float(v), 4) for v in np.asarray(output).ravel()])
        rows.append({"image": str(sample.path), "label": sample.label, "answer": answer,
                     "found": True})
    rows += [{"image": str(s.path), "label": s.label, "answer": None, "found": False}
             for s in view.missed]
    return rows


def evaluate(bundle_path: Path, data: Path, fmt: str = "auto", json_path: Optional[str] = None,
             device_name: str = "auto", progress: bool = True, crops: bool = False,
             live: bool = False, tracking: bool = True) -> Dict[str, Any]:
    """Metrics of a bundle on any dataset (a subset of the classes is fine); an image where
    the model's subject is not found counts as a wrong answer. ``live``: also through the
    live loop (:mod:`edge_app.train.live_eval`), the figure ``edge-app run`` earns."""
    device = resolve_device(device_name)
    bundle, model = load_model(bundle_path, str(device))
    task = bundle.task
    kind = task.task_kind.training()
    ds = load_labelled(Path(data), task, fmt, "eval", progress)
    if not ds.samples:
        raise DatasetError(f"{data}: no images of task '{task.name}' to evaluate")
    plan = dataclasses.replace(bundle.plan, crops=crops or declared_crops(Path(data)))
    trainer = plan.kind.training()
    start = time.monotonic()
    view = trainer.view(ds, plan, None, task, progress)
    if plan.kind.subject:
        _rotation_hint(ds, plan, progress)
    if view.samples:
        outputs = trainer.predict(model, view, bundle.input_size, device, progress)
    else:
        outputs = kind.empty_outputs(task)
    norm = _face_eye_distances(ds, view, task, plan, progress) if kind.normalised_by_face else None
    metrics = kind.metrics(outputs, view.targets, task, view.sizes, norm)
    if plan.kind.subject:   # a missed subject is a wrong answer, not skipped
        metrics = kind.count_misses(metrics, [s.label for s in view.missed], task)
        log.info("subject: %s found in %.0f%% of %d image(s)", plan.subject,
                 100 * metrics["detection_rate"], metrics["n"])
    log.info("evaluated %s on %d image(s) of %s in %.1f s: %s", bundle_path, metrics["n"], data,
             time.monotonic() - start, kind.describe(metrics))
    if kind.normalised_by_face:
        from edge_app.train.task_kinds import bias_hint  # lazy: pulls in torch

        if bias_hint(metrics):
            log.warning(bias_hint(metrics))
        metrics = _with_baseline(metrics, ds, view, task, plan, norm, progress)
    for name, acc in metrics.get("per_class", {}).items():
        log.info("  %-12s %s", name, "n/a" if acc is None else f"{acc:.1%}")
    result = dict(metrics, bundle=str(bundle_path), data=str(data), notes=ds.notes,
                  input=plan.input, missed_files=[str(s.path) for s in view.missed],
                  answers=_answers(view, outputs, task, kind))
    if live:
        result["live"] = live_evaluate(Path(bundle_path), ds, tracking=tracking)
        result["live_camera"] = live_evaluate(Path(bundle_path), ds, tracking=tracking,
                                              as_camera=True)
        log.info("live, run --source on these folders (tracking %s): accuracy %.1f%% (found "
                 "%.0f%%); as a camera's frames: accuracy %.1f%% (found %.0f%%); eval's search: "
                 "%s (found %.0f%%)", "on" if tracking else "off",
                 100 * result["live"]["accuracy"], 100 * result["live"]["detection_rate"],
                 100 * result["live_camera"]["accuracy"],
                 100 * result["live_camera"]["detection_rate"], kind.describe(metrics),
                 100 * metrics.get("detection_rate", 1.0))
    if json_path:
        atomic_write_text(json_path, json_text(result, indent=2) + "\n")
    return result
