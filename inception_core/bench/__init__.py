"""Benchmark core shared by ``inception-core bench`` and the pytest-benchmark suite in ``benchmarks/``.

Modules: ``references`` (reference networks, ``ModelPair``), ``flops`` (FLOP counts, device peaks),
``timing``, ``runner`` (providers, ``run_network``), ``results`` (records, metadata, JSON), ``report``
(tables, chart). Everything is re-exported here. What they hold:
    * the reference networks (torchvision / timm / pretrainedmodels / facenet-pytorch) with random weights
      (``randomize_for_equivalence``) and ours built from them by ``inception_core.convert``: both hold
      the same weights, so their outputs can be compared;
    * ``ModelRunner``: one provider of one network ready to run one inference batch or one training
      step: ``inception_core`` (ours, on the configured backend), ``eager`` (the reference as its
      package runs it: stock cuDNN conv + BN + ReLU + cat) and ``compiled`` (the reference under
      ``torch.compile``; on CUDA ``mode="max-autotune"`` with ``freezing`` for inference);
    * ``time_interleaved``: the providers of a network timed in interleaved rounds (A B C, B C A, ...),
      CUDA events on a GPU, ``time.perf_counter`` + synchronize elsewhere; per provider the median and
      inter-quartile range, per pair the median of the per-round ratios with its spread
      (``ratio_summary``): on a machine whose speed drifts, the ratios hold where block timings do not;
    * FLOP counts (conv + linear multiply-accumulates from a forward-hook pass on the meta device, x2),
      the device peak table, and the derived figures (images/s, TFLOP/s, GB/s, fraction of peak);
    * result records with their JSON / Markdown writers and the bar chart (matplotlib, the ``plot``
      extra, imported only when a chart is asked for).

Everything runs channels_last. Low precision runs under ``torch.autocast`` (weights stay fp32) for every
provider, so ours and the references see the same inputs.
"""

from inception_core.bench.flops import (
    DevicePeak,
    count_macs,
    derived_metrics,
    device_name,
    device_peak,
    model_flops,
    peak_for_name,
    peak_tflops,
)
from inception_core.bench.references import (
    NETWORKS,
    NUM_CLASSES,
    REFERENCES,
    SMALLEST_INPUT,
    ModelPair,
    ReferenceUnavailable,
    build_pair,
)
from inception_core.bench.report import (
    describe_run,
    format_table,
    markdown_report,
    plot_results,
    rounds_line,
    table_rows,
    write_markdown,
)
from inception_core.bench.results import (
    FORMAT,
    Result,
    git_commit,
    load_average,
    read_json,
    results_from_pytest_benchmark,
    run_metadata,
    write_json,
)
from inception_core.bench.runner import (
    AUX_WEIGHT,
    DTYPES,
    MODES,
    PROVIDERS,
    REFERENCE_PROVIDERS,
    ModelRunner,
    default_compile_mode,
    dtype_name,
    ours_backend,
    provider_note,
    run_network,
    truth_output,
)
from inception_core.bench.timing import (
    Timing,
    ratio_summary,
    synchronize,
    time_callable,
    time_interleaved,
)

__all__ = [
    "AUX_WEIGHT",
    "DTYPES",
    "DevicePeak",
    "FORMAT",
    "MODES",
    "ModelPair",
    "ModelRunner",
    "NETWORKS",
    "NUM_CLASSES",
    "PROVIDERS",
    "REFERENCES",
    "REFERENCE_PROVIDERS",
    "ReferenceUnavailable",
    "Result",
    "SMALLEST_INPUT",
    "Timing",
    "build_pair",
    "count_macs",
    "default_compile_mode",
    "derived_metrics",
    "describe_run",
    "device_name",
    "device_peak",
    "dtype_name",
    "format_table",
    "git_commit",
    "load_average",
    "markdown_report",
    "model_flops",
    "ours_backend",
    "provider_note",
    "peak_for_name",
    "peak_tflops",
    "plot_results",
    "ratio_summary",
    "read_json",
    "results_from_pytest_benchmark",
    "rounds_line",
    "run_metadata",
    "run_network",
    "synchronize",
    "table_rows",
    "time_callable",
    "time_interleaved",
    "truth_output",
    "write_json",
    "write_markdown",
]
