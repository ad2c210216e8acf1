"""Markdown tables from benchmarks/results/pigment_quality.json (for models/README.md).

Usage: python tools/quality_tables.py [benchmarks/results/pigment_quality.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else ROOT / "benchmarks" / "results" / "pigment_quality.json"
    r = json.loads(path.read_text(encoding="utf-8"))
    first = r["mockups"][0]["levels"][0]["model"]["any_detectable"]["per_pigment"]
    classes = list(first)
    print("Macro F1 on detectable labels (all labels in brackets); pooled ECE on detectable labels (all labels in"
          " brackets):\n")
    print("| mock-up | counts | model | paper CNN | evidence rule | model ECE | paper CNN ECE |")
    print("|---|---|---|---|---|---|---|")
    for m in r["mockups"]:
        for row in m["levels"]:
            cells = []
            for who in ("model", "compare", "rule"):
                s = row.get(who)
                cells.append("-" if s is None else
                             f"{_f(s['any_detectable']['macro_f1'])} ({_f(s['any_all']['macro_f1'])})")
            ece = [f"{_f(row[w]['any_detectable']['pooled_ece'])} ({_f(row[w]['any_all']['pooled_ece'])})"
                   if w in row else "-" for w in ("model", "compare")]
            print(f"| {m['name']} | {row['count_level']:g} | " + " | ".join(cells) + " | " + " | ".join(ece) + " |")
    for m in r["mockups"]:
        row = m["levels"][0]
        print(f"\n{m['name']}, full counts, F1 on detectable labels per pigment:\n")
        print("| | " + " | ".join(classes) + " |")
        print("|---" * (len(classes) + 1) + "|")
        for who, label in (("model", "model"), ("compare", "paper CNN"), ("rule", "evidence rule")):
            if who in row:
                per = row[who]["any_detectable"]["per_pigment"]
                print(f"| {label} | " + " | ".join(_f(per[c]["f1"]) for c in classes) + " |")
        print("| ECE (model, all labels) | " + " | ".join(_f(row["model"]["any_all"]["per_pigment"][c]["ece"])
                                                   for c in classes) + " |")
        print("| detectable share | " + " | ".join(_f(m["detectable_share"][c]) for c in classes) + " |")
        for head in ("surface", "hidden"):
            if head in row["model"]:
                per = row["model"][head]["per_pigment"]
                print(f"| model {head} | " + " | ".join(
                    f"{_f(per[c]['f1'])}" if per[c]["support"] else "-" for c in classes) + " |")
        print(f"\nunexplained-element flags: {100 * row['model']['unexplained_pixel_share']:.2f} % of pixels "
              f"({', '.join(row['model']['unexplained_elements']) or 'none'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
