#!/usr/bin/env python3
"""compare.py RUN1.md RUN2.md [--pool DATA1 DATA2 SERIES...] — do two full.sh reports agree?

For every table cell of the form "median [lo, hi]" that both reports have (same section, same
row, same column), it prints both and one verdict: "each median in the other" (each run's median
lies inside the other run's interval), "overlap" (the intervals overlap), or "DISJOINT". The last
line counts them; the exit status is 1 if any cell is disjoint.

--pool: the paired per-round samples of both runs (the guest's bench-data dirs, one "ROUND VALUE"
line per round in a file per SERIES) taken together, with the same order-statistic interval of
the median as the guest script (largest k with coverage 1 - 2*P(Bin(n, 1/2) <= k-1) >= 90 %).
"""
import re
import sys
from math import comb

CELL = re.compile(r"(-?[\d.]+)(×)?\s*\[(-?[\d.]+)×?,\s*(-?[\d.]+)×?\]")


def cells(path):
    """{(section, row label, column): (median, lo, hi, is_ratio)} of a report."""
    out, sec = {}, ""
    for line in open(path, encoding="utf-8"):
        if line.startswith("### "):
            sec = line[4:].split(":")[0].strip()
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        for i, c in enumerate(cols[1:], 1):
            m = CELL.search(c)
            if m:
                out[(sec, cols[0], i)] = (
                    float(m.group(1)), float(m.group(3)), float(m.group(4)), bool(m.group(2)))
    return out


def interval(xs, coverage=0.90):
    """(median, lo, hi, coverage) of samples xs; min-max when no k reaches the coverage."""
    xs = sorted(xs)
    n = len(xs)
    k, cov = 1, 1 - 2 / 2**n
    for j in range(1, n // 2 + 1):
        c = 1 - 2 * sum(comb(n, i) for i in range(j)) / 2**n
        if c >= coverage:
            k, cov = j, c
    return (xs[(n - 1) // 2] + xs[n // 2]) / 2, xs[k - 1], xs[n - k], cov


def main(argv):
    if len(argv) < 2 or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 2
    a, b = cells(argv[0]), cells(argv[1])
    inside = disjoint = n = 0
    for k, (m1, l1, h1, ratio) in a.items():
        if k not in b:
            continue
        m2, l2, h2, _ = b[k]
        n += 1
        if l2 <= m1 <= h2 and l1 <= m2 <= h1:
            verdict = "each median in the other"
            inside += 1
        elif l1 <= h2 and l2 <= h1:
            verdict = "overlap"
        else:
            verdict = "DISJOINT"
            disjoint += 1
        u = "×" if ratio else ""
        print(f"{k[0][:16]} | {k[1][:72]} | col {k[2]} | "
              f"{m1:g}{u} [{l1:g}, {h1:g}] | {m2:g}{u} [{l2:g}, {h2:g}] | {verdict}")
    print(f"{n} cells in both: {inside} with each median inside the other's interval, "
          f"{n - inside - disjoint} overlapping only, {disjoint} disjoint")
    if "--pool" in argv:
        i = argv.index("--pool")
        d1, d2, series = argv[i + 1], argv[i + 2], argv[i + 3:]
        for s in series:
            xs = [float(line.split()[-1])
                  for d in (d1, d2) for line in open(f"{d}/{s}", encoding="utf-8") if line.strip()]
            m, lo, hi, cov = interval(xs)
            print(f"pooled {s}: n = {len(xs)}, median {m:g} [{lo:g}, {hi:g}] ({cov:.1%} coverage)")
    return 1 if disjoint else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
