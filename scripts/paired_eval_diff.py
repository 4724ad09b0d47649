"""Paired comparison of `motioncache evaluate` reports made on the same captions and seeds: per attribute, how many
videos a variant got right that the base got wrong (+) and the reverse (-). Same seeds give the same starting noise,
so this separates a real change from the noise of 100 videos better than comparing two accuracies.

    python scripts/paired_eval_diff.py BASE.json VARIANT.json [VARIANT.json ...] [--seeds 2,3]
"""

from __future__ import annotations

import argparse
import json

from motioncache.evaluate import FIELDS


def right(videos: list[dict], field: str) -> list[bool]:
    return [v["truth"][field] == v["prediction"][field] for v in videos]


def paired_diff(base: list[dict], variant: list[dict]) -> dict[str, tuple[int, int]]:
    """field -> (videos right only in the variant, videos right only in the base)."""
    if [(v["caption"], v["seed"]) for v in base] != [(v["caption"], v["seed"]) for v in variant]:
        raise SystemExit("the reports hold different captions or seeds: rerun evaluate with the same --n and --seeds")
    diff = {}
    for field in FIELDS:
        pairs = list(zip(right(base, field), right(variant, field)))
        diff[field] = (sum(b and not a for a, b in pairs), sum(a and not b for a, b in pairs))
    return diff


def accuracies(videos: list[dict]) -> str:
    return " / ".join(f"{sum(right(videos, field)) / len(videos):.0%}" for field in FIELDS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("base")
    p.add_argument("variants", nargs="+")
    p.add_argument("--seeds", help="comma-separated: compare only the videos of these seeds (e.g. fresh ones)")
    args = p.parse_args()
    keep = None if args.seeds is None else {int(s) for s in args.seeds.split(",")}

    def videos(path: str) -> list[dict]:
        return [v for v in json.load(open(path))["videos"] if keep is None or v["seed"] in keep]

    base = videos(args.base)
    print(f"{args.base}: {len(base)} videos, {'/'.join(FIELDS)} {accuracies(base)}")
    for path in args.variants:
        mine = videos(path)
        diff = paired_diff(base, mine)
        print(f"{path}: {accuracies(mine)}; right / wrong vs base: "
              + "  ".join(f"{field} +{gain}/-{loss}" for field, (gain, loss) in diff.items()))


if __name__ == "__main__":
    main()
