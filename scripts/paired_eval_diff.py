"""Paired comparison of `motioncache evaluate` reports made on the same captions and seeds: per attribute, how many
videos a variant got right that the base got wrong (+) and the reverse (-). Same seeds give the same starting noise,
so this separates a real change from the noise of 100 videos better than comparing two accuracies.

    python scripts/paired_eval_diff.py BASE.json VARIANT.json [VARIANT.json ...]
"""

from __future__ import annotations

import argparse
import json

ATTRIBUTES = ("color", "shape", "direction")


def paired_diff(base: list[dict], variant: list[dict]) -> dict[str, tuple[int, int]]:
    """attribute -> (videos right only in the variant, videos right only in the base)."""
    if [(v["caption"], v["seed"]) for v in base] != [(v["caption"], v["seed"]) for v in variant]:
        raise SystemExit("the reports hold different captions or seeds: rerun evaluate with the same --n and --seeds")
    diff = {}
    for attr in ATTRIBUTES:
        right_base = [v["truth"][attr] == v["prediction"][attr] for v in base]
        right_variant = [v["truth"][attr] == v["prediction"][attr] for v in variant]
        diff[attr] = (sum(b and not a for a, b in zip(right_base, right_variant)),
                      sum(a and not b for a, b in zip(right_base, right_variant)))
    return diff


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("base")
    p.add_argument("variants", nargs="+")
    args = p.parse_args()
    base = json.load(open(args.base))["videos"]
    for path in args.variants:
        diff = paired_diff(base, json.load(open(path))["videos"])
        print(path, "  ".join(f"{attr} +{gain}/-{loss}" for attr, (gain, loss) in diff.items()))


if __name__ == "__main__":
    main()
