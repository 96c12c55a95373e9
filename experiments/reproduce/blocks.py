"""Runs -> as few Hydra sweeps as possible. A Hydra multirun launches the cartesian product of its swept
values, so the runs to launch are split into exact cartesian blocks: each block launches exactly its runs."""
from __future__ import annotations


def cartesian_blocks(arg_lists: list[list[str]]) -> list[list[str]]:
    """[["a=1", "b=x"], ["a=2", "b=x"]] -> [["a=1,2", "b=x"]]; the union of the blocks' products is the input."""
    blocks = []
    for args in dict.fromkeys(tuple(a) for a in arg_lists):       # dedupe, keep order
        blocks.append([(key, (value,)) for key, value in (a.split("=", 1) for a in args)])
    if not blocks:
        return []
    for position in reversed(range(max(len(b) for b in blocks))):
        merged: dict = {}
        for block in blocks:
            if position >= len(block):
                merged.setdefault((tuple(block), None), block)
                continue
            rest = tuple(block[:position] + block[position + 1:])
            key = (rest, block[position][0])
            if key in merged:
                name, values = merged[key][position]
                merged[key][position] = (name, values + tuple(v for v in block[position][1] if v not in values))
            else:
                merged[key] = list(block)
        blocks = list(merged.values())
    return [[f"{key}={','.join(values)}" for key, values in block] for block in blocks]
