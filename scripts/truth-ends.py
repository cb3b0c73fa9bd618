#!/usr/bin/env python3
"""How much of each Kubicka track's true route lies where nothing was recorded.

The ground truth is whole arcs of the network, so it begins at the start of
the arc under the first fix and ends at the end of the last fix's arc; a
recording that starts partway along its first arc leaves true route no
matcher can see. For each unflagged track this prints the true route more than
TOL metres (default 5, `match-eval`'s tolerance) before the first fix's place
on it plus after the last fix's, as a share of the true length, and the
median and mean over the tracks. The first fix is placed within the first
fifth of the route, the last within the last fifth (so a round trip's end is
not mistaken for its start).

    scripts/truth-ends.py ../shared/data/traces/kubicka [TOL]
"""
import csv
import json
import math
import os
import statistics
import sys


def lines(g):
    kind = g.get("type")
    if kind == "FeatureCollection":
        for f in g["features"]:
            yield from lines(f)
    elif kind == "Feature":
        yield from lines(g["geometry"])
    elif kind == "LineString":
        yield g["coordinates"]
    elif kind == "MultiLineString":
        yield from g["coordinates"]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    tol = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    flags = {}
    if os.path.exists(f"{root}/TRACKS.csv"):
        flags = {r["id"]: r["flag"] for r in csv.DictReader(open(f"{root}/TRACKS.csv"))}
    shares = []
    for tid in sorted(os.listdir(root)):
        track = f"{root}/{tid}/{tid}.track.csv"
        if not os.path.exists(track) or flags.get(tid):
            continue
        fixes = [(float(r["lon"]), float(r["lat"])) for r in csv.DictReader(open(track))]
        truth = json.load(open(f"{root}/{tid}/{tid}.route.geojson"))
        coords = [c for line in lines(truth) for c in line]
        kx = 111_320 * math.cos(math.radians(fixes[0][1]))
        xy = lambda c: (c[0] * kx, c[1] * 111_320)
        pts = [xy(c) for c in coords]
        cum = [0.0]
        for a, b in zip(pts, pts[1:]):
            cum.append(cum[-1] + math.dist(a, b))
        length = cum[-1]

        def place(q, lo, hi):
            best = (math.inf, 0.0)
            for i in range(len(pts) - 1):
                if cum[i + 1] < lo or cum[i] > hi:
                    continue
                (ax, ay), (bx, by) = pts[i], pts[i + 1]
                dx, dy = bx - ax, by - ay
                l2 = dx * dx + dy * dy
                t = 0.0 if l2 == 0 else max(0.0, min(1.0, ((q[0] - ax) * dx + (q[1] - ay) * dy) / l2))
                d = math.dist(q, (ax + t * dx, ay + t * dy))
                if d < best[0]:
                    best = (d, cum[i] + t * math.sqrt(l2))
            return best[1]

        before = place(xy(fixes[0]), 0.0, 0.2 * length)
        after = length - place(xy(fixes[-1]), 0.8 * length, length)
        share = (max(0.0, before - tol) + max(0.0, after - tol)) / length
        shares.append(share)
        print(f"{tid}  ends {share * 100:5.2f} %  before the first fix {before:6.0f} m  "
              f"after the last {after:6.0f} m  true route {length / 1000:5.1f} km")
    if shares:
        print(f"{len(shares)} tracks: median {statistics.median(shares) * 100:.2f} %, "
              f"mean {statistics.mean(shares) * 100:.2f} %, "
              f"over 0.5 %: {sum(s > 0.005 for s in shares)}")


if __name__ == "__main__":
    main()
