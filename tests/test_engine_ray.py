"""`--engine ray` on a local 2-CPU Ray runtime: the same files as the local engine, record for record and byte
for byte; a worker killed mid-task is retried with nothing lost or duplicated; a build that keeps losing its
worker stops with one clear error and resumes on the next run."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")

from cxrdata_testing import plan_of, read_records  # noqa: E402

from cxrdata.cli import main  # noqa: E402
from cxrdata.errors import CxrdataError  # noqa: E402
from cxrdata.pipeline import engine_ray  # noqa: E402
from cxrdata.pipeline.build import BuildOptions, BuildResult, build  # noqa: E402
from cxrdata.pipeline.plan import ConfigPlan  # noqa: E402
from cxrdata.stage import Record, RecordStage, Resources, Stage  # noqa: E402
from cxrdata.targets.locate_stage import ReportLocateStage  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def ray_runtime() -> Any:
    """One local runtime for the module (the engine reuses it, and leaves it running)."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import a test module
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,  # a logical GPU: none is used
             object_store_memory=256 * 1024**2)
    yield
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@dataclass
class CrashWhileNoFlag(RecordStage):
    """Kills its worker process (``os._exit``) on record ``victim`` while ``flag`` does not exist; with
    ``once`` it creates the flag first, so only the first attempt dies."""

    name: ClassVar[str] = "crash"
    flag: Path = Path()
    victim: str = ""
    once: bool = True

    def process(self, record: Record) -> Record:
        if record["id"] == self.victim and not self.flag.exists():
            if self.once:
                self.flag.write_text(str(os.getpid()))
            os._exit(1)
        return record


@dataclass
class CrashInActor(CrashWhileNoFlag):
    """The same, as a stage that declares a GPU: the Ray engine runs it in a long-lived actor."""

    name: ClassVar[str] = "crash-actor"
    resources: ClassVar[Resources] = Resources(cpus=1.0, gpus=0.5)


@dataclass
class NeedsGpu(RecordStage):
    """Declares half a GPU (as RadGraph-XL's stage declares one); under Ray it checks it was given one."""

    name: ClassVar[str] = "gpu"
    resources: ClassVar[Resources] = Resources(cpus=1.0, gpus=0.5, batch_size=64)

    def process(self, record: Record) -> Record:
        if ray.is_initialized() and not ray.get_gpu_ids():
            raise RuntimeError("a GPU stage ran without a GPU")
        return record


@dataclass
class GpuReportLocate(ReportLocateStage):
    """The ldm-prompts locate stage declaring a GPU share, as it does with RadGraph-XL on CUDA."""

    @property
    def resources(self) -> Resources:  # type: ignore[override]
        return Resources(cpus=1.0, gpus=0.5, batch_size=64)

    def setup(self) -> None:
        if ray.is_initialized() and not ray.get_gpu_ids():
            raise RuntimeError("a GPU stage was set up without a GPU")
        super().setup()


def ldm_on_gpu(plan: ConfigPlan) -> ConfigPlan:
    """The ldm-prompts plan with its locate stage declaring a GPU share."""
    plan.stages = [GpuReportLocate(**_init_fields(s)) if isinstance(s, ReportLocateStage) else s for s in plan.stages]
    return plan


def _init_fields(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj) if f.init}


def mimic_plan(root: Path, **options: Any) -> ConfigPlan:
    return plan_of("mimic", root=root, **options)


def crashing_mimic(root: Path, crash: Stage, before_image: bool = False) -> ConfigPlan:
    """MIMIC with one more stage (one that crashes) before the image stage (``head``) or after it (in the
    writer's task)."""
    plan = mimic_plan(root)
    row, report, image = plan.stages
    plan.stages = [row, report, crash, image] if before_image else [row, report, image, crash]
    return plan


def digests(out: Path, folder: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / folder).glob("*.parquet"))}


def marker_counts(out: Path, config: str) -> dict[str, Any]:
    """Per task: the counts of its marker (not its timings)."""
    counts = {}
    for path in sorted((out / "tasks" / config).glob("*.json")):
        stats = json.loads(path.read_text())["stats"]
        counts[path.name] = {k: stats[k] for k in ("splits", "reasons", "notes")}
    return counts


def assert_same_output(out: Path, reference: Path, config: str = "mimic") -> None:
    assert read_records(out, config) == read_records(reference, config)
    assert digests(out, f"data/{config}") == digests(reference, f"data/{config}")
    assert digests(out, f"rejects/{config}") == digests(reference, f"rejects/{config}")
    assert marker_counts(out, config) == marker_counts(reference, config)
    assert not list(out.rglob("*.tmp"))


def ray_build(plans: list[ConfigPlan], out: Path) -> BuildResult:
    return build(plans, BuildOptions(out=out, workers=2, quiet=True, engine="ray"))


def test_ray_writes_the_same_files_and_manifest_as_local(mimic_sample, mimic_build, tmp_path):
    result = ray_build([mimic_plan(mimic_sample.root)], tmp_path / "ray")
    assert result.results[0].tasks_run == result.results[0].tasks > 1
    assert_same_output(result.out, mimic_build.out)
    assert (result.out / "manifest.json").read_text() == (mimic_build.out / "manifest.json").read_text()

    before = {p: p.stat().st_mtime_ns for p in result.out.rglob("*") if p.is_file()}
    again = ray_build([mimic_plan(mimic_sample.root)], result.out)
    assert again.nothing_to_do
    assert {p: p.stat().st_mtime_ns for p in result.out.rglob("*") if p.is_file()} == before


def test_cli_ldm_prompts_with_rules_gives_the_same_prompts(mimic_sample, tmp_path):
    """ldm-prompts with the rules: the locate stage (a setup(), no GPU) runs with the writer, set up once."""
    outs = {}
    for engine in ("local", "ray"):
        outs[engine] = tmp_path / engine
        result = CliRunner().invoke(main, ["build", "mimic", "--root", str(mimic_sample.root), "--recipe",
                                           "ldm-prompts", "--extractor", "rules", "--out", str(outs[engine]),
                                           "--workers", "2", "--tasks", "3", "--quiet", "--engine", engine],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
    records = read_records(outs["ray"], "ldm-prompts")
    assert records and all(r["prompt"] for r in records.values())
    assert_same_output(outs["ray"], outs["local"], "ldm-prompts")
    manifests = [json.loads((outs[e] / "manifest.json").read_text())["configs"]["ldm-prompts"] for e in outs]
    assert manifests[0]["counts"] == manifests[1]["counts"]
    assert manifests[1]["counts"]["rejects_by_reason"], "the locate stage's rejects are kept"


def test_gpu_locate_stage_runs_in_actors_and_gives_the_same_prompts(mimic_sample, tmp_path):
    def ldm_plan(out: Path) -> ConfigPlan:
        return plan_of("mimic", recipe="ldm-prompts", root=mimic_sample.root, extractor="rules", out=out)

    on_gpu = ldm_on_gpu(ldm_plan(tmp_path / "ray"))
    head, tail = engine_ray.split_chain(on_gpu.stages)
    assert isinstance(head[-1], GpuReportLocate) and [s.name for s in tail] == ["image"]
    local = build([ldm_plan(tmp_path / "local")], BuildOptions(out=tmp_path / "local", workers=2, tasks=3, quiet=True))
    on_ray = build([on_gpu], BuildOptions(out=tmp_path / "ray", workers=2, tasks=3, quiet=True, engine="ray"))
    assert on_ray.config_hash == local.config_hash
    assert read_records(on_ray.out, "ldm-prompts")
    assert_same_output(on_ray.out, local.out, "ldm-prompts")
    assert (on_ray.out / "manifest.json").read_text() == (local.out / "manifest.json").read_text()


@pytest.mark.parametrize("before_image", [False, True], ids=["task", "actor"])
def test_a_worker_killed_mid_task_is_retried(mimic_sample, mimic_build, tmp_path, before_image):
    victim = sorted(read_records(mimic_build.out, "mimic"))[len(read_records(mimic_build.out, "mimic")) // 2]
    flag = tmp_path / "crashed"
    kind = CrashInActor if before_image else CrashWhileNoFlag
    source = crashing_mimic(mimic_sample.root, kind(flag=flag, victim=victim), before_image=before_image)
    if before_image:
        assert engine_ray.needs_actor(source.stages[2])
    result = ray_build([source], tmp_path / "out")
    assert flag.exists(), "the worker was killed"
    assert result.results[0].totals.written == mimic_build.results[0].totals.written
    assert_same_output(result.out, mimic_build.out)


def test_a_worker_that_keeps_dying_stops_the_build_and_a_rerun_resumes(mimic_sample, mimic_build, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setattr(engine_ray, "RETRIES", 1)
    victim = sorted(read_records(mimic_build.out, "mimic"))[0]
    flag = tmp_path / "fixed"
    source = crashing_mimic(mimic_sample.root, CrashWhileNoFlag(flag=flag, victim=victim, once=False))
    out = tmp_path / "out"
    with pytest.raises(CxrdataError, match=r"worker died 2 times.*rerun the same command"):
        ray_build([source], out)
    assert not (out / "manifest.json").exists()
    finished = list((out / "tasks" / "mimic").glob("*.json"))
    flag.write_text("")  # the cause is gone (more memory, say): the same command finishes the build
    result = ray_build([source], out)
    assert result.results[0].tasks_run == result.results[0].tasks - len(finished) >= 1
    assert_same_output(out, mimic_build.out)


def test_a_gpu_stage_runs_in_gpu_actors_and_changes_nothing(mimic_sample, mimic_build, tmp_path):
    source = crashing_mimic(mimic_sample.root, NeedsGpu(), before_image=True)
    head, tail = engine_ray.split_chain(source.stages)
    assert [s.name for s in head] == ["mimic-row", "report", "gpu"] and [s.name for s in tail] == ["image"]
    assert_same_output(ray_build([source], tmp_path / "out").out, mimic_build.out)


def test_a_gpu_stage_on_a_cluster_without_gpus_is_refused():
    with pytest.raises(CxrdataError, match=r"needs 0\.5 GPU per actor; the Ray cluster has 0"):
        engine_ray._pool_size(NeedsGpu(), {"CPU": 16.0})
    assert engine_ray._pool_size(NeedsGpu(), {"CPU": 16.0, "GPU": 4.0}) == 8


def test_ray_address_needs_the_ray_engine(mimic_sample, tmp_path):
    with pytest.raises(CxrdataError, match="--ray-address applies only with --engine ray"):
        build([mimic_plan(mimic_sample.root)], BuildOptions(out=tmp_path / "o", address="auto", quiet=True))
