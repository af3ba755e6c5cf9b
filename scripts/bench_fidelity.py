"""NumPy vs the fleetcal numpy engine, side by side in one run (driven by scripts/bench-fidelity).

For every figure the same process measures NumPy, then runs the engine's example binary for
the same operation, precision and size, so both sides see the same machine state. Both use
the same warm-ups and trials and report the best trial (rates from the fastest call).

Which NumPy figure the engine is judged against ("reference"):
- gemm/gemv: the BLAS call alone (np.matmul(..., out=)); the natural expression
  `C = a*(A@B) + b*C` adds temporaries and element-wise passes, shown for information.
- dot: np.dot(x, y), the only form.
- STREAM copy/scale/add: NumPy's one-pass `out=` forms (np.copyto, np.multiply(c, s, out=b),
  np.add(a, b, out=c)); the natural `b = s*c` makes a temporary.
- STREAM triad and axpy: NumPy's best form without temporaries is two passes
  (`np.multiply(c, s, out=a); np.add(a, b, out=a)`; axpy `np.multiply(x, a, out=t);
  np.add(t, y, out=y)`), and the engine runs exactly those passes. Both sides are counted by
  the same rule (STREAM's 3 arrays; axpy's 2n FLOPs), so the ratio is a ratio of times.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info

DTYPES = {
    "fp64": np.float64,
    "fp32": np.float32,
    "fp16": np.float16,
    "int64": np.int64,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
}

ALPHA, BETA, SCALAR = 1.5, 0.5, 3.0


def sample(shape, dtype, rng):
    """Inputs like the engine's: uniform [0, 1) floats, integers in -3..=3."""
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-3, 4, size=shape).astype(dtype)
    return rng.random(shape).astype(dtype)


def scalars(dtype):
    if np.issubdtype(dtype, np.integer):
        return dtype(int(ALPHA)), dtype(int(BETA)), dtype(int(SCALAR))
    return dtype(ALPHA), dtype(BETA), dtype(SCALAR)


def numpy_forms(op, dtype, n):
    """{form: (callable, bytes actually moved per call or None)} for one figure."""
    rng = np.random.default_rng(1)
    a_, b_, s = scalars(dtype)
    st = {}
    if op == "dot":
        x, y = sample(n, dtype, rng), sample(n, dtype, rng)
        return {"np.dot": (lambda: np.dot(x, y), None)}
    if op == "axpy":
        st["x"], st["y"] = sample(n, dtype, rng), sample(n, dtype, rng)
        t = np.empty(n, dtype)

        def natural():
            st["y"] = a_ * st["x"] + st["y"]

        def two_pass():
            np.multiply(st["x"], a_, out=t)
            np.add(t, st["y"], out=st["y"])

        return {"natural": (natural, None), "out= 2-pass": (two_pass, None)}
    if op in ("gemv", "gemm"):
        A = sample((n, n), dtype, rng)
        rhs = sample(n if op == "gemv" else (n, n), dtype, rng)
        st["y"] = sample(n if op == "gemv" else (n, n), dtype, rng)
        t = np.empty_like(st["y"])

        def natural():
            st["y"] = a_ * (A @ rhs) + b_ * st["y"]

        return {"natural": (natural, None), "matmul out=": (lambda: np.matmul(A, rhs, out=t), None)}
    # STREAM
    a, b, c = (sample(n, dtype, rng) for _ in range(3))
    st.update(a=a, b=b, c=c)
    if op == "stream_copy":
        def natural():
            st["c"] = st["a"].copy()

        return {"natural": (natural, None), "out=": (lambda: np.copyto(c, a), None)}
    if op == "stream_scale":
        def natural():
            st["b"] = s * st["c"]

        return {"natural": (natural, None), "out=": (lambda: np.multiply(c, s, out=b), None)}
    if op == "stream_add":
        def natural():
            st["c"] = st["a"] + st["b"]

        return {"natural": (natural, None), "out=": (lambda: np.add(a, b, out=c), None)}

    def natural():
        st["a"] = st["b"] + s * st["c"]

    def two_pass():
        np.multiply(c, s, out=a)
        np.add(a, b, out=a)

    return {"natural": (natural, None), "out= 2-pass": (two_pass, None)}


def best_seconds(fn, warmup, trials):
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(trials):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


FLOPS = {
    "dot": lambda n: 2 * n,
    "axpy": lambda n: 2 * n,
    "gemv": lambda n: 2 * n * n,
    "gemm": lambda n: 2 * n ** 3,
}
ELEMENTS = {
    "stream_copy": 2,
    "stream_scale": 2,
    "stream_add": 3,
    "stream_triad": 3,
    "axpy": 3,
}


def counted_rate(op, n, item, seconds):
    """GFLOPS for BLAS, GB/s (by STREAM's counting) for STREAM."""
    if op.startswith("stream"):
        return ELEMENTS[op] * n * item / seconds / 1e9
    return FLOPS[op](n) / seconds / 1e9


def engine_run(binary, op, prec, size, mib, warmup, trials, threads):
    cmd = [binary, "--operations", op, "--precisions", prec, "--warmup", str(warmup),
           "--trials", str(trials)]
    cmd += ["--stream-mib", str(mib)] if mib else ["--sizes", str(size)]
    if threads:
        cmd += ["--threads", str(threads)]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    rec = out["records"][0]
    if rec["status"] != "measured":
        raise SystemExit(f"engine did not measure {op} {prec} {size}: {rec.get('reason')}")
    rate = rec["bandwidth_gbps"]["best"] if op.startswith("stream") else rec["gops"]["best"]
    return rate, out["engine"]


# (operation, precision, size or STREAM MiB, tolerance)
def figures(stream_mib):
    f = []
    for prec in ("fp32", "fp64"):
        f += [("gemm", prec, 1024, 0.10), ("gemm", prec, 2048, 0.10)]
        f += [("gemv", prec, 2048, 0.10), ("dot", prec, 1_000_000, 0.10), ("dot", prec, 10_000_000, 0.10)]
    f += [("axpy", "fp32", 1_000_000, 0.10)]
    f += [(op, "fp32", stream_mib, 0.10) for op in ("stream_copy", "stream_scale", "stream_add", "stream_triad")]
    f += [("gemm", p, 512, 0.25) for p in ("int64", "int32", "int16", "int8")]
    f += [("gemm", "fp16", 256, 0.25)]
    return f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", required=True, help="the fidelity example binary")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--stream-mib", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=2, help="NumPy/engine alternations per figure")
    ap.add_argument("--only", default="", help="comma-separated operations to keep")
    args = ap.parse_args()

    keep = set(filter(None, args.only.split(",")))
    print("load average (1, 5, 15 min) at start: %.2f %.2f %.2f" % os.getloadavg())
    print(f"NumPy {np.__version__}; BLAS: " + "; ".join(
        f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} threads={i.get('num_threads')}"
        for i in threadpool_info()))
    header = f"{'op':<13}{'prec':<6}{'size':>10}  {'numpy natural':>14}{'numpy ref':>11}  {'ref form':<12}{'engine':>9}{'ratio':>7}  target"
    rows, engine_info, misses = [], None, 0
    for op, prec, size, tol in figures(args.stream_mib):
        if keep and op not in keep:
            continue
        dtype = DTYPES[prec]
        item = np.dtype(dtype).itemsize
        is_stream = op.startswith("stream")
        n = (size * 1024 * 1024) // item if is_stream else size
        forms = numpy_forms(op, dtype, n)
        best = {name: float("inf") for name in forms}
        eng = 0.0
        # alternate NumPy and the engine, best of all rounds per side, so that load changes
        # on the machine hit both sides alike
        # BLAS-1/2 calls take well under a millisecond: a trial window that short is easily
        # hit by another process on a small machine, so those get more rounds
        rounds = max(args.rounds, 5) if op in ("dot", "axpy", "gemv") else args.rounds
        for _ in range(rounds):
            for name, (fn, _) in forms.items():
                best[name] = min(best[name], best_seconds(fn, args.warmup, args.trials))
            rate, engine_info = engine_run(args.engine, op, prec, size, size if is_stream else None,
                                           args.warmup, args.trials, args.threads)
            eng = max(eng, rate)
        results = {}
        for name, (_, actual_bytes) in forms.items():
            sec = best[name]
            results[name] = (counted_rate(op, n, item, sec), actual_bytes / sec / 1e9 if actual_bytes else None)
        del forms
        ref_name = next((k for k in results if k != "natural"), "natural")
        ref_rate, _ = results[ref_name]
        natural = results["natural"][0] if "natural" in results and ref_name != "natural" else None
        ref_show, ref_label = ref_rate, ref_name
        ratio = eng / ref_show
        ok = abs(ratio - 1) <= tol
        misses += 0 if ok else 1
        unit = "GB/s" if is_stream else ("GIOPS" if prec.startswith("int") else "GFLOPS")
        label = f"{size} MiB" if is_stream else str(size)
        nat = f"{natural:14.2f}" if natural is not None else f"{'-':>14}"
        row = (f"{op:<13}{prec:<6}{label:>10}  {nat}{ref_show:11.2f}  {ref_label:<12}{eng:9.2f}{ratio:7.3f}  "
               f"±{tol:.0%} {'yes' if ok else 'NO'}  ({unit})")
        if not rows:
            print(header)
        rows.append(row)
        print(row, flush=True)
    if engine_info:
        blas = engine_info.get("blas") or {}
        print(f"engine: {engine_info['library']}; BLAS: {blas.get('library')} {blas.get('version')} "
              f"kernel={blas.get('kernel')} threads={blas.get('threads')}")
    print(f"{len(rows) - misses}/{len(rows)} figures within target")
    print("load average (1, 5, 15 min) at end: %.2f %.2f %.2f" % os.getloadavg())
    return 0


if __name__ == "__main__":
    sys.exit(main())
