#!/usr/bin/env python3
"""Writes a synthetic indicator dataset of a given size: OUT/config.toml plus one CSV per metric.

    benches/generate.py SERIES OUT [--seed N] [--format metric-csv|long-csv|sdmx-csv|sdmx-ml]
    benches/generate.py SERIES OUT --datasets N [--seed N] [--format ...]

The dataset is shaped like a regional enterprise survey: six metrics (units percent, count and
10k_yuan) labeled by region (administrative division codes), industry (GB/T 4754 division
codes), enterprise size and survey year (2010-2025), each series a run of consecutive years.
SERIES is the exact number of declared series (what `--config.check` reports); the exporter
derives latest/change series on top. Output is deterministic for a given SERIES and seed.
With --format long-csv the same observations go into one long CSV (an `indicator` column
picks the metric) read through an [[input]]; with sdmx-csv into one SDMX-CSV 1.0 file
(DATAFLOW, INDICATOR, REF_AREA, INDUSTRY, SIZE, TIME_PERIOD, OBS_VALUE, OBS_STATUS), as a
publisher would write it; with sdmx-ml into one SDMX-ML 2.1 StructureSpecificData message (a Series
element per series with its dimensions, an Obs element per observation with TIME_PERIOD,
OBS_VALUE and OBS_STATUS). With --datasets N, OUT/config.toml is a catalogue whose directory
OUT/datasets.d holds N dataset config files (dNNN.toml, data in dNNN/), each of SERIES series
with its own name (bench_survey_NNN), metric prefix (benchNNN_) and seed (SEED + NNN - 1);
their label sets are drawn by a faster method than a single dataset's, so dNNN.toml differs
from a single dataset of the same seed.
Python 3 standard library only.
"""

import argparse
import os
import random
import sys

YEARS = list(range(2010, 2026))

# Provincial-level division codes (GB/T 2260, first two digits).
PROVINCES = [
    ("11", "Beijing", "北京市"),
    ("12", "Tianjin", "天津市"),
    ("13", "Hebei", "河北省"),
    ("14", "Shanxi", "山西省"),
    ("15", "Inner Mongolia", "内蒙古自治区"),
    ("21", "Liaoning", "辽宁省"),
    ("22", "Jilin", "吉林省"),
    ("23", "Heilongjiang", "黑龙江省"),
    ("31", "Shanghai", "上海市"),
    ("32", "Jiangsu", "江苏省"),
    ("33", "Zhejiang", "浙江省"),
    ("34", "Anhui", "安徽省"),
    ("35", "Fujian", "福建省"),
    ("36", "Jiangxi", "江西省"),
    ("37", "Shandong", "山东省"),
    ("41", "Henan", "河南省"),
    ("42", "Hubei", "湖北省"),
    ("43", "Hunan", "湖南省"),
    ("44", "Guangdong", "广东省"),
    ("45", "Guangxi", "广西壮族自治区"),
    ("46", "Hainan", "海南省"),
    ("50", "Chongqing", "重庆市"),
    ("51", "Sichuan", "四川省"),
    ("52", "Guizhou", "贵州省"),
    ("53", "Yunnan", "云南省"),
    ("54", "Tibet", "西藏自治区"),
    ("61", "Shaanxi", "陕西省"),
    ("62", "Gansu", "甘肃省"),
    ("63", "Qinghai", "青海省"),
    ("64", "Ningxia", "宁夏回族自治区"),
    ("65", "Xinjiang", "新疆维吾尔自治区"),
]
PREFECTURES_PER_PROVINCE = 20

# GB/T 4754-2017 industry sections and their two-digit division ranges.
SECTIONS = [
    ("A", 1, 5),
    ("B", 6, 12),
    ("C", 13, 43),
    ("D", 44, 46),
    ("E", 47, 50),
    ("F", 51, 52),
    ("G", 53, 60),
    ("H", 61, 62),
    ("I", 63, 65),
    ("J", 66, 69),
    ("K", 70, 70),
    ("L", 71, 72),
    ("M", 73, 75),
    ("N", 76, 79),
    ("O", 80, 82),
    ("P", 83, 83),
    ("Q", 84, 85),
    ("R", 86, 90),
    ("S", 91, 96),
]

SIZES = [
    ("all", "All", "全部"),
    ("large", "Large enterprises", "大型企业"),
    ("medium", "Medium-sized enterprises", "中型企业"),
    ("small", "Small enterprises", "小型企业"),
    ("micro", "Micro enterprises", "微型企业"),
]

SOURCES = [
    ("Y%d" % y, "Regional enterprise survey yearbook %d" % y, "%d-09-30" % (y + 1))
    for y in YEARS[:-1]
] + [("P2025", "Regional enterprise survey 2025, preliminary release", "2026-01-20")]


def source_of(year):
    return "P2025" if year == 2025 else "Y%d" % year


# (name, unit, labels, share of the series, help)
METRICS = [
    (
        "enterprises",
        "count",
        ["region", "industry", "size", "year"],
        0.20,
        "Enterprises surveyed at the end of the year, by region, industry and size.",
    ),
    (
        "employees",
        "count",
        ["region", "industry", "size", "year"],
        0.20,
        "Persons employed by surveyed enterprises at the end of the year.",
    ),
    (
        "rd_expenditure",
        "10k_yuan",
        ["region", "industry", "size", "year"],
        0.20,
        "Internal R&D expenditure of surveyed enterprises, in yuan (published in 10,000 yuan).",
    ),
    (
        "operating_revenue",
        "10k_yuan",
        ["region", "industry", "year"],
        0.10,
        "Operating revenue of surveyed enterprises, in yuan (published in 10,000 yuan).",
    ),
    (
        "invention_patent_industrialization",
        "percent",
        ["region", "industry", "size", "year"],
        0.20,
        "Share of valid invention patents of surveyed enterprises that were industrialized.",
    ),
    (
        "rd_active_enterprise_share",
        "percent",
        ["region", "industry", "year"],
        0.10,
        "Share of surveyed enterprises with R&D activity during the year.",
    ),
]


def regions():
    out = []
    for code, en, zh in PROVINCES:
        out.append((code + "0000", en, zh))
        for i in range(1, PREFECTURES_PER_PROVINCE + 1):
            out.append(
                ("%s%02d00" % (code, i), "%s prefecture %d" % (en, i), "%s第%d地区" % (zh, i))
            )
    return out


def industries():
    out = []
    for section, lo, hi in SECTIONS:
        for d in range(lo, hi + 1):
            out.append(("%s%02d" % (section, d), "Division %s%02d" % (section, d)))
    return out


def toml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_counts(total, shares):
    """Splits total by shares into integers that add up to total exactly."""
    counts = [int(total * s) for s in shares]
    counts[0] += total - sum(counts)
    return counts


def write_metric_csv(path, rng, unit, labels, count, region_list, industry_list, sample=False):
    """Writes `count` series: one run of consecutive years per label set until the count is met.

    With `sample`, the label sets are drawn without shuffling them all: much faster for a small
    count, but other data than the same seed gives without it."""
    dims = []
    for label in labels:
        if label == "region":
            dims.append([r[0] for r in region_list])
        elif label == "industry":
            dims.append([i[0] for i in industry_list])
        elif label == "size":
            dims.append([s[0] for s in SIZES])
    capacity = len(YEARS)
    for d in dims:
        capacity *= len(d)
    if count > capacity:
        sys.exit("%s: %d series asked, at most %d fit its labels" % (path, count, capacity))
    # Visit label sets in a fixed shuffled order so that a small dataset still spans regions.
    n_sets = capacity // len(YEARS)
    if sample:
        order = rng.sample(range(n_sets), min(count, n_sets))
    else:
        order = list(range(n_sets))
        rng.shuffle(order)
    runs = []
    written = 0
    # Runs of 6-16 years average 11; with every set used, runs are stretched to full length.
    full = count > n_sets * 10
    for idx in order:
        if written >= count:
            break
        length = len(YEARS) if full else rng.randint(6, len(YEARS))
        end = 2025 if rng.random() < 0.7 else 2024
        length = min(length, count - written, end - YEARS[0] + 1)
        runs.append((idx, end - length + 1, end))
        written += length
    if written < count:
        # Top up runs that end before 2025 or start after 2010 until the count is met.
        for i, (idx, start, end) in enumerate(runs):
            while written < count and start > YEARS[0]:
                start -= 1
                written += 1
            while written < count and end < YEARS[-1]:
                end += 1
                written += 1
            runs[i] = (idx, start, end)
            if written >= count:
                break
    runs.sort()
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(",".join(labels + ["value", "source", "basis"]) + "\n")
        for idx, start, end in runs:
            codes = []
            rest = idx
            for d in reversed(dims):
                codes.append(d[rest % len(d)])
                rest //= len(d)
            codes.reverse()
            prefix = ",".join(codes) + ","
            if unit == "percent":
                level = rng.uniform(5.0, 80.0)
            elif unit == "count":
                level = rng.lognormvariate(6.0, 1.6)
            else:
                level = rng.lognormvariate(8.0, 1.8)
            for year in range(start, end + 1):
                if unit == "percent":
                    level = min(100.0, max(0.0, level + rng.gauss(0.6, 1.5)))
                    value = "%.1f" % level
                elif unit == "count":
                    level *= rng.uniform(0.97, 1.09)
                    value = "%d" % round(level)
                else:
                    level *= rng.uniform(0.95, 1.12)
                    value = "%.2f" % level
                basis = ""
                if year == 2025:
                    basis = "preliminary"
                elif rng.random() < 0.01:
                    basis = '"revised, see the next yearbook"'
                f.write("%s%d,%s,%s,%s\n" % (prefix, year, value, source_of(year), basis))
    return written


def convert(out, data, fmt):
    """Rewrites the per-metric CSVs in OUT/DATA as one publisher file; returns the [[input]] lines."""
    dims = ["region", "industry", "size"]
    if fmt == "sdmx-ml":
        return convert_sdmx_ml(out, data, dims)
    if fmt == "long-csv":
        target = data + "/all.csv"
        header = ["indicator"] + dims + ["year", "value"]
    else:
        target = data + "/all_sdmx.csv"
        header = ["DATAFLOW", "INDICATOR", "REF_AREA", "INDUSTRY", "SIZE", "TIME_PERIOD", "OBS_VALUE", "OBS_STATUS"]
    with open(os.path.join(out, target), "w", newline="", encoding="utf-8") as f:
        f.write(",".join(header) + "\n")
        for name, _unit, labels, _, _ in METRICS:
            path = os.path.join(out, data, "%s.csv" % name)
            with open(path, encoding="utf-8") as src:
                cols = src.readline().rstrip("\n").split(",")
                for line in src:
                    # The generator never quotes codes, years or values; only `basis` may be.
                    fields = line.rstrip("\n").split(",")
                    row = dict(zip(cols, fields))
                    codes = [row.get(d, "_Z") for d in dims]
                    if fmt == "long-csv":
                        codes = [row.get(d, "") for d in dims]
                        f.write(",".join([name] + codes + [row["year"], row["value"]]) + "\n")
                    else:
                        status = "P" if row["year"] == "2025" else "A"
                        f.write(
                            ",".join(["BENCH:SURVEY(1.0)", name] + codes + [row["year"], row["value"], status])
                            + "\n"
                        )
            os.remove(path)
    codes = ", ".join("%s = %s" % (toml_str(m[0]), toml_str(m[0])) for m in METRICS)
    lines = ["[[input]]", "file = " + toml_str(target)]
    if fmt == "long-csv":
        lines += ['format = "csv"', 'metric_dimension = "indicator"']
    else:
        lines += [
            'format = "sdmx-csv"',
            'metric_dimension = "INDICATOR"',
            'labels = { region = "REF_AREA", industry = "INDUSTRY", size = "SIZE" }',
        ]
    lines += ["metrics = { %s }" % codes, ""]
    return lines


def convert_sdmx_ml(out, data, dims):
    """Rewrites the per-metric CSVs as one SDMX-ML 2.1 StructureSpecificData message."""
    target = data + "/all.xml"
    with open(os.path.join(out, target), "w", encoding="utf-8") as f:
        f.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<message:StructureSpecificData xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message"'
            ' xmlns:ss="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/structurespecific">\n'
            "<message:Header><message:ID>bench</message:ID>"
            '<message:Structure structureID="SURVEY" dimensionAtObservation="TIME_PERIOD"/></message:Header>\n'
            '<message:DataSet ss:structureRef="SURVEY" action="Replace">\n'
        )
        for name, _unit, labels, _, _ in METRICS:
            path = os.path.join(out, data, "%s.csv" % name)
            last = None
            with open(path, encoding="utf-8") as src:
                cols = src.readline().rstrip("\n").split(",")
                for line in src:
                    fields = line.rstrip("\n").split(",")
                    row = dict(zip(cols, fields))
                    codes = [row.get(d, "_Z") for d in dims]
                    if codes != last:
                        if last is not None:
                            f.write("</Series>\n")
                        f.write(
                            '<Series INDICATOR="%s" REF_AREA="%s" INDUSTRY="%s" SIZE="%s">\n'
                            % tuple([name] + codes)
                        )
                        last = codes
                    status = "P" if row["year"] == "2025" else "A"
                    f.write(
                        '<Obs TIME_PERIOD="%s" OBS_VALUE="%s" OBS_STATUS="%s"/>\n'
                        % (row["year"], row["value"], status)
                    )
                if last is not None:
                    f.write("</Series>\n")
            os.remove(path)
        f.write("</message:DataSet>\n</message:StructureSpecificData>\n")
    codes = ", ".join("%s = %s" % (toml_str(m[0]), toml_str(m[0])) for m in METRICS)
    return [
        "[[input]]",
        "file = " + toml_str(target),
        'format = "sdmx-ml"',
        'metric_dimension = "INDICATOR"',
        'labels = { region = "REF_AREA", industry = "INDUSTRY", size = "SIZE" }',
        "metrics = { %s }" % codes,
        "",
    ]


def write_dataset(out, data, series, seed, fmt, dataset_name, prefix, sample=False):
    """Writes one dataset's data files into OUT/DATA and returns its config file's text."""
    os.makedirs(os.path.join(out, data), exist_ok=True)
    rng = random.Random(seed)
    region_list = regions()
    industry_list = industries()

    lines = [
        "# Synthetic regional enterprise survey, written by benches/generate.py",
        "# (%d series, seed %d). Not real figures." % (series, seed),
        "",
        "[dataset]",
        "name = " + toml_str(dataset_name),
        'title = "Regional enterprise survey indicators (synthetic benchmark data)"',
        'publisher = "Benchmark statistics office"',
        'source_url = "https://example.org/enterprise-survey"',
        'published = "2026-01-20"',
        "metric_prefix = " + toml_str(prefix),
        'description = "Synthetic figures shaped like a regional enterprise survey, for benchmarks."',
        "",
        "[dataset.period]",
        'label = "year"',
        'cadence = "annual"',
        "expected_release_lag_days = 31",
        "overdue_release_lag_days = 243",
        "",
    ]
    for sid, title, published in SOURCES:
        lines += [
            "[[source]]",
            "id = " + toml_str(sid),
            "title = " + toml_str(title),
            'url = "https://example.org/enterprise-survey/%s"' % sid.lower(),
            "published = " + toml_str(published),
            "",
        ]
    label_defs = [
        ("region", "Administrative division code (GB/T 2260).", [(c, e, z) for c, e, z in region_list]),
        ("industry", "Industry division code (GB/T 4754-2017).", [(c, e, "行业" + c) for c, e in industry_list]),
        ("size", "Enterprise size class.", SIZES),
    ]
    for name, help_text, values in label_defs:
        lines += ["[[label]]", "name = " + toml_str(name), "help = " + toml_str(help_text), "values = ["]
        for code, en, zh in values:
            lines.append(
                "  { code = %s, names = { en = %s, zh = %s } }," % (toml_str(code), toml_str(en), toml_str(zh))
            )
        lines += ["]", ""]

    counts = split_counts(series, [m[3] for m in METRICS])
    total = 0
    for (name, unit, labels, _, help_text), count in zip(METRICS, counts):
        csv_name = "%s/%s.csv" % (data, name)
        total += write_metric_csv(
            os.path.join(out, csv_name), rng, unit, labels, count, region_list, industry_list, sample
        )
        lines += [
            "[[metric]]",
            "name = " + toml_str(name),
            "unit = " + toml_str(unit),
            "help = " + toml_str(help_text),
            "labels = [%s]" % ", ".join(toml_str(label) for label in labels),
        ]
        if fmt == "metric-csv":
            lines.append("samples_file = " + toml_str(csv_name))
        lines.append("")
    if fmt != "metric-csv":
        lines += convert(out, data, fmt)
    if total != series:
        sys.exit("internal error: wrote %d series, expected %d" % (total, series))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("series", type=int, help="number of declared series to write (per dataset)")
    ap.add_argument("out", help="output folder (created; existing files are overwritten)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument(
        "--format",
        choices=["metric-csv", "long-csv", "sdmx-csv", "sdmx-ml"],
        default="metric-csv",
        help="how the observations are written (default: one CSV per metric)",
    )
    ap.add_argument(
        "--datasets",
        type=int,
        help="write a catalogue of this many datasets in OUT/datasets.d (default: one dataset in OUT/config.toml)",
    )
    args = ap.parse_args()
    if args.series < len(METRICS):
        sys.exit("series must be at least %d" % len(METRICS))
    if args.datasets is not None and not 1 <= args.datasets <= 999:
        sys.exit("--datasets must be between 1 and 999")
    os.makedirs(args.out, exist_ok=True)
    main_config = os.path.join(args.out, "config.toml")
    if args.datasets is None:
        text = write_dataset(
            args.out, "data", args.series, args.seed, args.format, "bench_enterprise_survey", "bench_"
        )
        with open(main_config, "w", encoding="utf-8") as f:
            f.write(text)
        print("%s: %d series in %d metrics" % (main_config, args.series, len(METRICS)))
        return
    directory = os.path.join(args.out, "datasets.d")
    if os.path.isdir(directory):
        # Datasets of an earlier, larger run would stay in the catalogue.
        for entry in os.listdir(directory):
            if entry.endswith(".toml"):
                os.remove(os.path.join(directory, entry))
    os.makedirs(directory, exist_ok=True)
    for i in range(1, args.datasets + 1):
        text = write_dataset(
            directory,
            "d%03d" % i,
            args.series,
            args.seed + i - 1,
            args.format,
            "bench_survey_%03d" % i,
            "bench%03d_" % i,
            sample=True,
        )
        with open(os.path.join(directory, "d%03d.toml" % i), "w", encoding="utf-8") as f:
            f.write(text)
    with open(main_config, "w", encoding="utf-8") as f:
        f.write(
            "# A catalogue of %d synthetic datasets, written by benches/generate.py.\n"
            "[catalog]\n"
            'directory = "datasets.d"\n' % args.datasets
        )
    print(
        "%s: %d datasets of %d series in %d metrics, in %s"
        % (main_config, args.datasets, args.series, len(METRICS), directory)
    )


if __name__ == "__main__":
    main()
