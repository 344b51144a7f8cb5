#!/usr/bin/env python3
"""Extracts the ```cpp blocks of a Markdown file into one C++ source that compiles them all:
each block in a namespace of its own (doc_sample_N), its #include lines hoisted to the top.

    scripts/doc_samples.py docs/sdk.md OUTPUT.cc
"""
import re
import sys


def main(markdown_path, output_path):
    text = open(markdown_path, encoding="utf-8").read()
    blocks = re.findall(r"^```cpp\n(.*?)^```", text, flags=re.M | re.S)
    if not blocks:
        sys.exit(f"{markdown_path}: no cpp blocks")
    includes, bodies = [], []
    for n, block in enumerate(blocks, 1):
        lines = block.splitlines()
        includes += [line for line in lines if line.startswith("#include")]
        body = "\n".join(line for line in lines if not line.startswith("#include"))
        bodies.append(f"// {markdown_path}, sample {n}\nnamespace doc_sample_{n} {{\n{body}\n}}\n")
    out = [f"// Generated from {markdown_path} by scripts/doc_samples.py; do not edit.\n"]
    out += sorted(set(includes), key=includes.index)
    out.append("")
    out += bodies
    new = "\n".join(out)
    try:
        if open(output_path, encoding="utf-8").read() == new:
            return
    except OSError:
        pass
    open(output_path, "w", encoding="utf-8").write(new)


if __name__ == "__main__":
    main(*sys.argv[1:])
