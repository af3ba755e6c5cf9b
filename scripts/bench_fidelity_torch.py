"""PyTorch vs the fleetcal pytorch engine on the CPU, side by side (driven by
scripts/bench-fidelity-torch).

Per figure, PyTorch (same libtorch 2.13.0, from the same wheel) and the engine's example binary
(`--framework pytorch`) alternate `--rounds` times with the same warm-ups, trials and thread
count; each side reports its best trial. Timing and rate helpers come from bench_fidelity.py.

The reference PyTorch form is the call the engine makes (see agent/src/engines/torch/kernel.rs),
written as Python users write it where PyTorch offers it:
- gemm `C.addmm_(A, B)`, gemv `y.addmv_(A, x)`, dot `torch.dot(x, y)`;
- axpy `torch.add(y, x, alpha=a, out=y)` and triad `torch.add(b, c, alpha=s, out=a)` (one pass;
  the engine's `addcmul` with a 0-dim scalar is the same pass: tch exposes no `alpha`);
- copy `c.copy_(a)`, scale `torch.mul(c, s, out=b)`, add `torch.add(a, b, out=c)`.
`torch.mm(A, B)` / `torch.mv(A, x)` / the natural expressions are printed for information.
"""

import argparse
import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_fidelity import best_seconds, counted_rate  # noqa: E402

DTYPES = {
    "fp64": torch.float64, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
    "int64": torch.int64, "int32": torch.int32, "int16": torch.int16, "int8": torch.int8,
}
SCALAR = 3


def sample(shape, dtype):
    """Inputs like the engine's: randn * 0.5 floats, integers in -3..=3."""
    if not dtype.is_floating_point:
        return torch.randint(-3, 4, shape, dtype=dtype)
    return (torch.randn(shape) * 0.5).to(dtype)


def torch_forms(op, dtype, n):
    """[(form name, callable)], the reference form first."""
    s = SCALAR
    if op == "dot":
        x, y = sample((n,), dtype), sample((n,), dtype)
        return [("torch.dot", lambda: torch.dot(x, y))]
    if op == "axpy":
        x, y = sample((n,), dtype), sample((n,), dtype)
        st = {"y": y.clone()}

        def natural():
            st["y"] = s * x + st["y"]

        return [("add alpha out=", lambda: torch.add(y, x, alpha=s, out=y)), ("natural", natural)]
    if op == "gemv":
        A, x, y = sample((n, n), dtype), sample((n,), dtype), sample((n,), dtype)
        t = torch.empty_like(y)
        return [("addmv_", lambda: y.addmv_(A, x)), ("mv out=", lambda: torch.mv(A, x, out=t))]
    if op == "gemm":
        A, B, C = sample((n, n), dtype), sample((n, n), dtype), sample((n, n), dtype)
        t = torch.empty_like(C)
        return [("addmm_", lambda: C.addmm_(A, B)), ("mm out=", lambda: torch.mm(A, B, out=t))]
    a, b, c = sample((n,), dtype), sample((n,), dtype), sample((n,), dtype)
    st = {}
    if op == "stream_copy":
        return [("copy_", lambda: c.copy_(a))]
    if op == "stream_scale":
        return [("mul out=", lambda: torch.mul(c, s, out=b))]
    if op == "stream_add":
        return [("add out=", lambda: torch.add(a, b, out=c))]

    def natural():
        st["a"] = b + s * c

    return [("add alpha out=", lambda: torch.add(b, c, alpha=s, out=a)), ("natural", natural)]


def engine_run(binary, op, prec, size, mib, warmup, trials, threads):
    cmd = [binary, "--framework", "pytorch", "--operations", op, "--precisions", prec,
           "--warmup", str(warmup), "--trials", str(trials), "--threads", str(threads)]
    cmd += ["--stream-mib", str(mib)] if mib else ["--sizes", str(size)]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    rec = out["records"][0]
    if rec["status"] != "measured":
        raise SystemExit(f"engine did not measure {op} {prec} {size}: {rec.get('reason')}")
    rate = rec["bandwidth_gbps"]["best"] if op.startswith("stream") else rec["gops"]["best"]
    return rate, out["engine"]


def figures(stream_mib):
    f = []
    for prec in ("fp32", "fp64"):
        f += [("gemm", prec, 1024), ("gemm", prec, 2048), ("gemv", prec, 2048)]
        f += [("dot", prec, 1_000_000), ("dot", prec, 10_000_000)]
    f += [("gemm", "bf16", 1024), ("gemm", "fp16", 256)]
    f += [("gemm", p, 512) for p in ("int64", "int32", "int16", "int8")]
    f += [("axpy", "fp32", 1_000_000)]
    f += [(op, "fp32", stream_mib) for op in ("stream_copy", "stream_scale", "stream_add", "stream_triad")]
    return f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", required=True, help="the fidelity example binary (feature torch)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2, help="PyTorch/engine alternations per figure")
    ap.add_argument("--stream-mib", type=int, default=256)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--tolerance", type=float, default=0.10)
    ap.add_argument("--only", default="", help="comma-separated operations to keep")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    keep = set(filter(None, args.only.split(",")))
    print(f"PyTorch {torch.__version__}: threads={torch.get_num_threads()} "
          f"mkl={torch.backends.mkl.is_available()} onednn={torch.backends.mkldnn.is_available()}")
    print(f"{'op':<13}{'prec':<6}{'size':>10}  {'torch ref':>10}  {'ref form':<15}{'engine':>9}"
          f"{'ratio':>7}  target   other forms")
    rows, misses, engine_info = 0, 0, None
    for op, prec, size in figures(args.stream_mib):
        if keep and op not in keep:
            continue
        dtype = DTYPES[prec]
        item = torch.empty((), dtype=dtype).element_size()
        is_stream = op.startswith("stream")
        n = (size * 1024 * 1024) // item if is_stream else size
        best = {}
        eng = 0.0
        with torch.no_grad():
            for _ in range(args.rounds):
                for name, fn in torch_forms(op, dtype, n):
                    sec = best_seconds(fn, args.warmup, args.trials)
                    best[name] = max(best.get(name, 0.0), counted_rate(op, n, item, sec))
                rate, engine_info = engine_run(args.engine, op, prec, size, size if is_stream else None,
                                               args.warmup, args.trials, args.threads)
                eng = max(eng, rate)
        names = list(best)
        ref_name, ref = names[0], best[names[0]]
        ratio = eng / ref
        ok = abs(ratio - 1) <= args.tolerance
        rows += 1
        misses += 0 if ok else 1
        unit = "GB/s" if is_stream else ("GIOPS" if prec.startswith("int") else "GFLOPS")
        label = f"{size} MiB" if is_stream else str(size)
        others = ", ".join(f"{k} {best[k]:.2f}" for k in names[1:])
        print(f"{op:<13}{prec:<6}{label:>10}  {ref:10.2f}  {ref_name:<15}{eng:9.2f}{ratio:7.3f}  "
              f"±{args.tolerance:.0%} {'yes' if ok else 'NO '}  {others} ({unit})", flush=True)
    if engine_info:
        blas = engine_info.get("blas") or {}
        print(f"engine: {engine_info['library']} threads={engine_info['threads']}; "
              f"BLAS: {blas.get('library')} kernel={blas.get('kernel')}")
    print(f"{rows - misses}/{rows} figures within target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
