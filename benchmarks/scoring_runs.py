"""One bulk-scoring run per process, so each reports its own peak RSS: `python scoring_runs.py KIND MODEL INPUT OUT`.

KIND: `job` (driftline's local engine), `ort` (polars read + in-process onnxruntime loop, the model's own speed),
`pandas` (pandas read_parquet + the same loop, the plain baseline). Prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

BATCH = 1024


def session(model: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # what the job's backend uses by default (onnx.intra_op_threads = 1)
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model / "1" / "model.onnx"), sess_options=options)


def loop(sess, x) -> int:
    for start in range(0, len(x), BATCH):
        sess.run(None, {"x": x[start : start + BATCH]})
    return len(x)


def main() -> None:
    kind, model, source, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    start = time.perf_counter()
    if kind == "job":
        from driftline.jobs import JobSpec, run_local

        spec = JobSpec(model=model.name, inputs=[str(source)], output=str(out), repository=str(model.parent),
                       batch_size=BATCH, passthrough=["id"])  # fmt: skip
        rows = run_local(spec).rows
    else:
        sess = session(model)
        cols = [f"f{i}" for i in range(256)]
        if kind == "ort":
            import polars as pl

            x = pl.read_parquet(source, columns=cols).to_numpy().astype("float32")
        else:
            import pandas as pd

            x = pd.read_parquet(source, columns=cols).to_numpy(dtype="float32")
        rows = loop(sess, x)
    seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"kind": kind, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "rss_mb": rss_mb}))


if __name__ == "__main__":
    main()
