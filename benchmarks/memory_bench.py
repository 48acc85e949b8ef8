"""Peak memory of featurize against the analysis window: frames and audio are streamed, so
peak RSS should not grow with episode length.

    uv run python benchmarks/memory_bench.py --windows 600 2400

Generates one low-resolution clip as long as the longest window, then featurizes it once per
window in a fresh process and prints the child's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys
from pathlib import Path
from introdetect.features.extract import featurize_episode
from introdetect.features.visual import load_backbone
from introdetect.params import FeatureParams
fp = FeatureParams(window_s=float(sys.argv[2]), weights="random")
featurize_episode(Path(sys.argv[1]), "m", Path(sys.argv[3]), load_backbone("random", "cpu"), fp)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--windows",
        type=float,
        nargs="+",
        default=[600.0, 2400.0],
        help="analysis windows in seconds",
    )
    ap.add_argument("--size", default="320x180", help="WxH of the generated clip")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from featurize_bench import make_clip

    tmp = Path(tempfile.mkdtemp())
    w, h = map(int, args.size.split("x"))
    t0 = time.perf_counter()
    clip = make_clip(tmp / "long.mp4", max(args.windows), w, h)
    print(f"generated {max(args.windows):.0f} s clip in {time.perf_counter() - t0:.0f} s\n")
    print("| window s | featurize wall s | peak RSS MiB |")
    print("|---|---|---|")
    for window in args.windows:
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", CHILD, str(clip), str(window), str(tmp / "m.h5")], check=True
        )
        wall = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # max over children
        print(f"| {window:.0f} | {wall:.1f} | {rss:.0f} (max so far) |")


if __name__ == "__main__":
    main()
