#!/usr/bin/python3
"""How noisy a table of configurations is, next to how far apart its best configurations lie:
per table, the best mean, the mean of the configuration at the top 0.1% and 1%, and the seeds'
standard deviation (all configurations, and the top 1%). Where one seed's noise is several times
the gap between the best and the top 1%, the configuration observed as best (the benchmark
protocol's result) is mostly a lucky one, for every sampler alike.

    /usr/bin/python3 bench/hpo_table_noise.py bench/data/hpo/*.csv.gz [--direction min]
"""
import argparse
import csv
import gzip
import statistics


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tables", nargs="+")
    ap.add_argument("--fitness-column", default="value_mean")
    ap.add_argument("--seeds-column", default="value_seeds")
    ap.add_argument("--direction", choices=["max", "min"], default="max")
    a = ap.parse_args()
    print("%-40s %10s %10s %10s %12s %12s" % ("table", "best", "top 0.1%", "top 1%",
                                             "seed sd", "sd (top 1%)"))
    for path in a.tables:
        with (gzip.open(path, "rt") if path.endswith(".gz") else open(path)) as f:
            rows = list(csv.DictReader(f))
        means = [float(r[a.fitness_column]) for r in rows]
        sds = [statistics.pstdev([float(x) for x in r[a.seeds_column].split(";")]) for r in rows]
        order = sorted(range(len(rows)), key=lambda i: means[i], reverse=a.direction == "max")
        top1 = order[:max(1, len(order) // 100)]
        print("%-40s %10.5g %10.5g %10.5g %12.4g %12.4g" % (
            path.split("/")[-1], means[order[0]], means[order[len(order) // 1000]],
            means[order[len(order) // 100]], statistics.mean(sds),
            statistics.mean(sds[i] for i in top1)))


if __name__ == "__main__":
    main()
