"""The benchmark scripts run (on tiny sizes); their timings are not checked here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"odl_learned_benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_bridge_runs(tmp_path):
    report = load("bench_bridge").main(["--batch", "2", "--size", "16", "--angles", "4", "--repeats", "1",
                                        "--json", str(tmp_path / "bridge.json")])
    assert set(report["ct_forward_backward_seconds"]) == {"odl_learned", "odl_contrib_astra_cpu"}
    assert (tmp_path / "bridge.json").exists()


def test_bench_equivariant_cost_compares_networks_of_matched_size(tmp_path):
    report = load("bench_equivariant_cost").main(["--sizes", "16", "--angles", "8", "--repeats", "1"])
    result = report["sizes"][16]
    params = result["params"]
    assert abs(params["equivariant"] - params["ordinary"]) < 0.02 * params["equivariant"]
    for entry in result["cases"].values():
        assert set(entry) == {"equivariant", "ordinary", "ratio"} and entry["ratio"] > 0


def test_timing_alternates_and_takes_medians():
    timing = load("_timing")
    calls = []
    medians = timing.alternating_medians({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                         repeats=3, warmup=1)
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert set(medians) == {"a", "b"} and all(m >= 0 for m in medians.values())


def test_bench_rbf_activation_times_both_modes():
    report = load("bench_rbf_activation").main(["--size", "12", "--batch", "1", "--filters", "3",
                                                "--stages", "2", "--repeats", "1"])
    for entry in report["cases"].values():
        assert set(entry) == {"eager", "fused", "speed_up"} and entry["speed_up"] > 0
