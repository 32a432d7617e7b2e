"""Write every generated number, table and code link of the READMEs from the files that hold them.

    python -m tools.readme              # rewrite the generated parts of every README.md
    python -m tools.readme --check      # list the parts that disagree with their sources (exit 1), write nothing

A README marks what is generated; the text between the marks is replaced, the rest is left alone:

    <!-- table: shipped began_refiner -->            a block, up to <!-- end -->
    ...
    <!-- end -->
    FID <!-- value: manifest began_refiner B eval.fid .1f -->41.7<!-- / -->      an inline value

The sources: ``<paper>/weights/manifest.json`` (shipped networks and the numbers their eval measured),
``<paper>/draws.json`` (recorded draws of the bare commands, ``tools.draws``), ``docs/timings.json``
(measured times, ``tools.timings``), and the code itself: ``code`` tables link each equation of a
paper's ``paper.EQUATIONS`` to the line of the function that implements it, and ``claims`` tables
compute each verdict from the numbers it compares (``paper.CLAIMS``). ``tests/test_readmes.py`` runs
``--check``, so a README that no longer agrees with a source fails the suite and names itself.
"""
import argparse
import importlib
import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # run from anywhere

from common.cli import one_sentence_errors                       # noqa: E402
from common.manifest import PAPERS, ROOT, read_manifest          # noqa: E402
from tools.draws import read_draws                               # noqa: E402

BLOCK = re.compile(r"(<!-- table: (?P<args>[^>]*?) -->\n)(?P<body>.*?)(<!-- end -->)", re.S)
INLINE = re.compile(r"(<!-- value: (?P<args>[^>]*?) -->)(?P<body>.*?)(<!-- / -->)", re.S)


def readmes() -> list:
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "common" / "README.md",
            *(ROOT / paper / "README.md" for paper in PAPERS)]


def declared(paper: str):
    return importlib.import_module(f"{paper}.paper")


def timings() -> dict:
    path = ROOT / "docs" / "timings.json"
    return json.loads(path.read_text()) if path.exists() else {}


def dig(data, path: str):
    """``data["a"]["b"]`` for the path ``a.b`` (names may hold no dot)."""
    for key in path.split("."):
        data = data[key]
    return data


def fmt(value, spec: str = "") -> str:
    if isinstance(value, float) and spec.endswith("%"):
        return f"{value:{spec}}"
    return f"{value:{spec}}" if spec else str(value)


def minutes(seconds: float) -> str:
    """612 → "10 min 12 s"; 48 → "48 s"."""
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def span(numbers, show) -> str:
    """The range of ``numbers`` as ``show`` writes them, "low–high"; one number where both read alike."""
    low, high = show(min(numbers)), show(max(numbers))
    return low if low == high else f"{low}–{high}"


# ----------------------------------------------------------------------------- inline values

def value(kind: str, *args) -> str:
    """An inline number: ``manifest PAPER NAME PATH [FORMAT]``, ``timing KEY [FIELD]``, ``spread PAPER NAME
    LABEL KEY [FORMAT]`` (min–max of a number over the draws), ``mean PAPER NAME LABEL KEY [FORMAT]``,
    ``draws PAPER NAME LABEL`` (how many), ``cpu PAPER NAME LABEL`` (the CPU they ran on), ``time PAPER NAME
    LABEL THREADS`` (their wall times with that many threads)."""
    if kind == "manifest":
        paper, name, path, *spec = args
        return fmt(dig(read_manifest(paper)[name], path), *spec)
    if kind == "json":                       # json FILE PATH [FORMAT]: any number of a JSON file of the repository
        file, path, *spec = args
        return fmt(dig(json.loads((ROOT / file).read_text()), path), *spec)
    if kind == "timing":                     # timing tests [FIELD], timing eval PAPER [FIELD] (docs/timings.json)
        key, *field = args if args[0] != "eval" else (f"eval {args[1]}", *args[2:])
        record = timings()[key]
        return minutes(record["wall_s"]) if not field else str(record[field[0]])
    paper, name, label, *rest = args
    draws = [d for d in read_draws(paper) if d["name"] == name and d["label"] == label]
    if not draws:
        raise KeyError(f"no draws of {paper} {name} labelled {label}")
    if kind == "draws":
        return str(len(draws))
    if kind == "cpu":
        return " / ".join(sorted({d["cpu"] for d in draws}))
    if kind == "time":                       # time THREADS: the range of the wall times of those draws
        return span([d["wall_s"] for d in draws if d["threads"] == int(rest[0])], minutes)
    key, *spec = rest
    numbers = [dig(d, key) for d in draws]
    if kind == "spread":
        return span(numbers, lambda x: fmt(x, *spec))
    if kind == "mean":
        return fmt(statistics.mean(numbers), *spec)
    raise KeyError(f"unknown value kind {kind!r}")


# ----------------------------------------------------------------------------- tables

def table(rows: list, columns: list) -> str:
    """A markdown table (a ``|`` inside a cell, as in |v − D(v)|, is escaped)."""
    def cell(value):
        return str(value).replace("|", "\\|")
    lines = ["| " + " | ".join(map(cell, columns)) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def shipped_table(paper: str) -> str:
    """The shipped networks: how each was trained and what its eval measured."""
    rows = []
    for name, entry in read_manifest(paper).items():
        stages = entry["stages"]
        steps = " + ".join(f"{s['steps']:,}" for s in stages.values())
        numbers = {k: v for k, v in entry["eval"].items() if k != "measured_on"}
        rows.append({"shipped": f"`weights/{name}`", "command": f"`{entry['command']}`", "steps": steps,
                     "trained": minutes(entry["wall_s"]), "kept": next(iter(stages.values()))["kept"],
                     **{k: fmt(v, ".1%" if k.endswith("rate") else ".3g" if isinstance(v, float) else "")
                        for k, v in numbers.items()}})
    columns = ["shipped", "command", "steps", "trained", "kept"]
    columns += [c for c in dict.fromkeys(k for r in rows for k in r) if c not in columns]
    return table(rows, columns)


DRAW_COLUMNS = {"eval.fid": ("FID (eval) ↓", ".1f"), "log.fid": ("FID of G in log.csv", ".1f"),
                "log.fid_ema": ("FID of the average", ".1f"), "eval.face_detection_rate": ("faces detected", ".0%"),
                "log.diversity": ("diversity", ".2f"), "log.diversity_px": ("colour diversity", ".2f"),
                "wall_s": ("time", "")}


def draws_table(paper: str, name: str, label: str) -> str:
    """One row per recorded draw of a bare command, and the spread of each number over them."""
    draws = [d for d in read_draws(paper) if d["name"] == name and d["label"] == label]
    if not draws:
        raise KeyError(f"no draws of {paper} {name} labelled {label}")
    keys = [k for k in DRAW_COLUMNS if any(_has(d, k) for d in draws)]
    rows = []
    for d in sorted(draws, key=lambda d: (d["threads"], d["seed"])):
        cells = {DRAW_COLUMNS[k][0]: minutes(d["wall_s"]) if k == "wall_s" else fmt(dig(d, k), DRAW_COLUMNS[k][1])
                 for k in keys if _has(d, k)}
        rows.append({"seed": d["seed"], "threads": d["threads"], **cells})
    spread = {"seed": "**spread**", "threads": ""}
    for k in keys:
        if k != "wall_s":
            numbers = [dig(d, k) for d in draws if _has(d, k)]
            low, high = (fmt(x, DRAW_COLUMNS[k][1]) for x in (min(numbers), max(numbers)))
            spread[DRAW_COLUMNS[k][0]] = f"**{low}–{high}**"
    columns = ["seed", "threads", *(DRAW_COLUMNS[k][0] for k in keys)]
    commands = sorted({d["command"].replace(f"--seed {d['seed']}", "--seed S") for d in draws})
    cpus, commits = sorted({d["cpu"] for d in draws}), sorted({d["commit"] for d in draws})
    head = (f"`OMP_NUM_THREADS=T {'`, `'.join(commands)}`: {len(draws)} draws on {' / '.join(cpus)}, 2 cores, "
            f"commit {', '.join(commits)}\n\n")
    return head + table(rows + [spread], columns)


def _has(draw, key):
    try:
        dig(draw, key)
        return True
    except KeyError:
        return False


def compare_table(paper: str, name: str, *labels) -> str:
    """The same bare command's draws under two (or more) recorded labels (the flags each set added to it):
    worst, best, spread and mean FID, and the range of the face-detection rate."""
    rows = []
    for label in labels:
        draws = [d for d in read_draws(paper) if d["name"] == name and d["label"] == label]
        fids = [d["eval"]["fid"] for d in draws]
        rates = [d["eval"]["face_detection_rate"] for d in draws if "face_detection_rate" in d["eval"]]
        flags = sorted({d["command"].split(f"--seed {d['seed']}")[1].strip() for d in draws})
        rows.append({"draws": label, "flags": ", ".join(f"`{f}`" if f else "(none)" for f in flags), "n": len(draws),
                     "worst FID": f"{max(fids):.1f}", "best FID": f"{min(fids):.1f}",
                     "worst − best": f"{max(fids) - min(fids):.1f}", "mean FID": f"{statistics.mean(fids):.1f}",
                     **({"faces detected": span(rates, "{:.0%}".format)} if rates else {})})
    return table(rows, list(rows[0]))


def code_table(paper: str) -> str:
    """``paper.EQUATIONS``: each equation, algorithm or table of the paper linked to the line that implements it."""
    rows = []
    for what, file, symbol in declared(paper).EQUATIONS:
        rows.append({"paper": what, "code": f"[`{symbol}`]({file}#L{line_of(paper, file, symbol)})"})
    return table(rows, ["paper", "code"])


def line_of(paper: str, file: str, symbol: str) -> int:
    """The line of ``def symbol`` / ``class symbol`` / ``symbol =`` in ``<paper>/<file>`` (1-based)."""
    pattern = re.compile(rf"^\s*(def|class)\s+{re.escape(symbol)}\b|^{re.escape(symbol)}\s*=")
    for number, line in enumerate((ROOT / paper / file).read_text().splitlines(), 1):
        if pattern.match(line):
            return number
    raise KeyError(f"{paper}/{file} defines no {symbol}")


def claims_table(paper: str) -> str:
    """``paper.CLAIMS``: each claim, the paper's numbers, ours, and the verdict computed from them."""
    rows = []
    for claim in declared(paper).CLAIMS:
        ours, holds = claim["measure"]()
        rows.append({"claim": claim["claim"], "paper": claim["paper"], "here": ours,
                     "reproduced?": "**yes**" if holds else "**no**"})
    return table(rows, ["claim", "paper", "here", "reproduced?"])


def speed_table(key: str) -> str:
    """A measurement of ``python -m benchmarks.speed [--train] --record`` (docs/speed.json)."""
    measured = json.loads((ROOT / "docs" / "speed.json").read_text())[key]
    rows = [{k: f"{v:,}" if isinstance(v, int) else v for k, v in row.items()} for row in measured["rows"]]
    return (f"{measured['cpu']}, {measured['threads']} thread(s), torch {measured['torch']}:\n\n"
            + table(rows, list(dict.fromkeys(k for row in rows for k in row))))


def synthnet_table() -> str:
    """The synthetic-face network's error in degrees per style (common/weights/synthnet.json)."""
    measured = json.loads((ROOT / "common" / "weights" / "synthnet.json").read_text())
    rows = [{"style": style, **{angle.replace("_", " "): f"{error:.1f}" for angle, error in errors.items()}}
            for style, errors in measured["mae_degrees"].items()]
    return table(rows, list(rows[0]))


TABLES = {"shipped": shipped_table, "draws": draws_table, "compare": compare_table, "code": code_table,
          "claims": claims_table, "speed": speed_table, "synthnet": synthnet_table}


# ----------------------------------------------------------------------------- rewriting

MISSING = "**(not recorded yet)**"


def render(text: str) -> str:
    """``text`` with every mark filled from its source; a source that does not hold the number yet (no
    draws recorded, no timing) gives ``MISSING``, which ``--check`` reports."""
    def fill(make, match):
        try:
            return make(*match.group("args").split())
        except (KeyError, IndexError, FileNotFoundError, ValueError):
            return MISSING

    def block(match):
        kind, *args = match.group("args").split()
        filled = fill(lambda *a: TABLES[kind](*args), match)
        return match.group(1) + (filled if filled != MISSING else MISSING + "\n") + match.group(4)

    def inline(match):
        return match.group(1) + fill(value, match) + match.group(4)
    return INLINE.sub(inline, BLOCK.sub(block, text))


@one_sentence_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a README is not up to date")
    args = ap.parse_args(argv)
    stale, missing = [], []
    for path in readmes():
        text = path.read_text()
        new = render(text)
        missing += [path.relative_to(ROOT)] * (MISSING in new)
        if new != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new)
                print(f"wrote {path.relative_to(ROOT)}")
    if missing:
        print("numbers not recorded yet (tools.draws, tools.timings, tools.figures) in: "
              + ", ".join(map(str, sorted(set(missing)))))
    if args.check and stale:
        print("not up to date with their sources (run python -m tools.readme): " + ", ".join(map(str, stale)))
    return 1 if (args.check and stale) or missing else 0

if __name__ == "__main__":
    sys.exit(main())
