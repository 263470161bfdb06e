"""Screening benchmark: the matcher against rapidfuzz baselines, in one run.

    .venv/bin/python bench/screening.py [--lists DIR] [--queries N] [--baseline-queries N]

Against the 3 May 2024 SDN with the December 2025 alias and address files (aliases of entries no
longer listed are skipped), with generated queries: listed names perturbed (typo, reordered,
"SURNAME, Given" written naturally, dropped middle name, written in Cyrillic or Arabic script,
unchanged) and common names that are not listed. Prints recall (the right entry among the
matches), the share of common names flagged, queries/s on one core, and load + index time; then
the same figures for rapidfuzz token_sort_ratio and token_set_ratio over every listed name.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from rapidfuzz import fuzz, process, utils

from clearance.screening.loaders import load
from clearance.screening.matcher import Matcher
from clearance.screening.models import EntityType, Entry, ListFormat, Outcome, Query
from clearance.screening.normalise import natural_order, tokens

DEFAULT_LISTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "lists"
CUTOFF = 88  # rapidfuzz score (0-100) from which a baseline hit counts as flagged

FIRST = """james mary robert patricia john jennifer michael linda david elizabeth william susan
richard jessica joseph sarah thomas karen charles lisa christopher nancy daniel betty matthew
sandra anthony ashley mark emily paul donna steven michelle andrew carol kenneth amanda joshua
melissa kevin deborah brian stephanie george rebecca timothy sharon ronald laura jason cynthia
jose maria juan carmen luis ana carlos lucia miguel sofia pedro elena jorge isabel pablo marta
hans anna peter ursula klaus petra wolfgang sabine jurgen monika pierre marie jean sophie luc
camille giovanni giulia marco chiara luca francesca wei fang jing lei yan hiroshi yuki kenji
haruto sakura raj priya amit sunita arjun ananya olga ivan natalia sergei tatiana dmitri irina
ahmed fatima omar aisha youssef layla karim nadia tariq samira emre elif mehmet ayse""".split()
LAST = """smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez
lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris
sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen hill
flores green adams nelson baker hall rivera campbell mitchell carter roberts muller schmidt
schneider fischer weber meyer wagner becker schulz hoffmann dubois moreau laurent simon michel
leroy rossi russo ferrari esposito bianchi romano colombo ricci wang li zhang liu chen yang huang
zhao wu zhou sato suzuki takahashi tanaka watanabe ito yamamoto nakamura patel sharma singh kumar
gupta mehta shah ivanov smirnov kuznetsov popov sokolov lebedev kozlov novak kowalski nowak
wisniewski yilmaz kaya demir sahin celik haddad khoury mansour nasser saleh farouk""".split()


def _pairs(text: str) -> list[tuple[str, str]]:
    """Pairs written "latin=letter"; longest Latin spellings first (they are tried in order)."""
    return [(a, b) for a, _, b in (p.partition("=") for p in text.split())]


# Latin -> Cyrillic (reverse BGN/PCGN) and Latin -> Arabic letters, to write listed names in the
# scripts people type them in.
_CYRILLIC = _pairs(
    "shch=щ kh=х zh=ж ts=ц ch=ч sh=ш yu=ю ya=я yo=ё ye=е iy=ий "  # noqa: RUF001
    "ey=ей ay=ай oy=ой a=а b=б v=в g=г d=д e=е z=з i=и y=ы k=к "  # noqa: RUF001
    "l=л m=м n=н o=о p=п r=р s=с t=т u=у f=ф c=к q=к w=в x=кс "  # noqa: RUF001
    "h=х j=дж "  # noqa: RUF001
)
_ARABIC = _pairs(
    "sh=ش kh=خ th=ث dh=ذ gh=غ ou=و oo=و ee=ي b=ب t=ت j=ج h=ح d=د "
    "r=ر z=ز s=س f=ف q=ق k=ك l=ل m=م n=ن w=و y=ي g=ج p=ب v=ف c=ك "
    "x=كس i=ي e=ي u=و o=و a=ا "  # noqa: RUF001
)
CYRILLIC_NATIONS = {"RU", "BY", "UA", "KZ", "KG", "TJ", "BG", "RS"}
ARABIC_NATIONS = {"IQ", "SY", "LB", "YE", "SA", "EG", "LY", "JO", "PS", "SD", "AE", "KW", "QA"}


def spell(word: str, table: Sequence[tuple[str, str]], abjad: bool) -> str:
    out, i = [], 0
    while i < len(word):
        if abjad and i > 0 and word[i] == "a":  # short vowels are not written
            i += 1
            continue
        for latin, letter in table:
            if word.startswith(latin, i):
                if not out or out[-1] != letter or not abjad:  # no shadda: doubles fold
                    out.append(letter)
                i += len(latin)
                break
        else:
            i += 1
    return "".join(out)


def typo(name: str, rng: random.Random) -> str:
    words = name.split()
    long = [i for i, w in enumerate(words) if len(w) >= 5]
    if not long:
        return name
    i = rng.choice(long)
    w = words[i]
    p = rng.randrange(1, len(w) - 1)
    kind = rng.choice("sdit")
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
    if kind == "s":
        w = w[:p] + letter + w[p + 1 :]
    elif kind == "d":
        w = w[:p] + w[p + 1 :]
    elif kind == "i":
        w = w[:p] + letter + w[p:]
    else:
        w = w[: p - 1] + w[p] + w[p - 1] + w[p + 1 :]
    words[i] = w
    return " ".join(words)


def perturb(entry: Entry, rng: random.Random) -> tuple[str, str]:
    name = rng.choice(entry.names[:4])
    plain = " ".join(natural_order(name).replace(",", " ").split())
    words = plain.split()
    person = entry.entity_type is EntityType.PERSON
    nations = set(entry.nationalities)
    if person and nations & ARABIC_NATIONS and rng.random() < 0.5:
        return "arabic", " ".join(spell(w.lower(), _ARABIC, True) for w in words)
    if person and nations & CYRILLIC_NATIONS and rng.random() < 0.5:
        return "cyrillic", " ".join(spell(w.lower(), _CYRILLIC, False) for w in words)
    kind = rng.choice(["typo", "typo", "reorder", "natural", "drop-middle", "exact"])
    if kind == "reorder":
        return kind, " ".join(reversed(words))
    if kind == "natural":
        return kind, plain
    if kind == "drop-middle" and person and len(words) >= 3:
        return kind, " ".join(words[:1] + words[2:])
    if kind == "typo":
        return kind, typo(plain, rng)
    return "exact", name


def make_queries(
    entries: Sequence[Entry], n: int, rng: random.Random
) -> list[tuple[str, str, str]]:
    chosen = rng.sample([e for e in entries if tokens(e.primary_name)], n)
    return [(kind, text, e.entry_id) for e in chosen for kind, text in [perturb(e, rng)]]


def common_names(entries: Sequence[Entry], n: int, rng: random.Random) -> list[str]:
    listed = {frozenset(tokens(name)) for e in entries for name in e.names}
    out: set[str] = set()
    while len(out) < n:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}".title()
        if frozenset(tokens(name)) not in listed:
            out.add(name)
    return sorted(out)


def run_matcher(
    matcher: Matcher, queries: list[tuple[str, str, str]], common: list[str]
) -> dict[str, object]:
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    start = time.perf_counter()
    for kind, text, entry_id in queries:
        result = matcher.screen(Query(text))
        total[kind] += 1
        found[kind] += any(m.entry_id == entry_id for m in result.matches)
    flagged = sum(matcher.screen(Query(c)).status is not Outcome.CLEAR for c in common)
    elapsed = time.perf_counter() - start
    return {
        "recall": sum(found.values()) / len(queries),
        "by_kind": {k: round(found[k] / total[k], 3) for k in sorted(total)},
        "flagged": flagged / len(common),
        "qps": (len(queries) + len(common)) / elapsed,
    }


def run_baseline(
    scorer: Callable[..., float],
    names: list[str],
    owners: list[str],
    queries: list[tuple[str, str, str]],
    common: list[str],
) -> dict[str, object]:
    processed = [utils.default_process(n) for n in names]
    start = time.perf_counter()
    hits = 0
    for _kind, text, entry_id in queries:
        best = process.extract(
            utils.default_process(text), processed, scorer=scorer, score_cutoff=CUTOFF, limit=5
        )
        hits += any(owners[i] == entry_id for _name, _score, i in best)
    flagged = 0
    for text in common:
        one = process.extractOne(
            utils.default_process(text), processed, scorer=scorer, score_cutoff=CUTOFF
        )
        flagged += one is not None
    elapsed = time.perf_counter() - start
    return {
        "recall": hits / len(queries),
        "flagged": flagged / len(common),
        "qps": (len(queries) + len(common)) / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=Path, default=DEFAULT_LISTS)
    parser.add_argument("--queries", type=int, default=3000)
    parser.add_argument("--baseline-queries", type=int, default=400)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    files = [
        args.lists / "ofac-sdn-2024-05-03" / "sdn.csv",
        args.lists / "ofac-add-alt-2025-12" / "alt.csv",
        args.lists / "ofac-add-alt-2025-12" / "add.csv",
    ]
    start = time.perf_counter()
    report = load(ListFormat.OFAC_SDN, [(f.name, f.read_bytes()) for f in files])
    loaded = time.perf_counter()
    matcher = Matcher.build([("OFAC SDN", report.entries)])
    indexed = time.perf_counter()
    print(f"SDN 2024-05-03: {len(report.entries)} entries, {len(matcher.names)} names")
    print(f"  skipped: {report.skipped}")
    print(f"  load {loaded - start:.2f} s + index {indexed - loaded:.2f} s")
    queries = make_queries(report.entries, args.queries, rng)
    common = common_names(report.entries, args.queries, rng)
    print(f"queries: {len(queries)} perturbed listed names, {len(common)} common names")
    ours = run_matcher(matcher, queries, common)
    print(
        f"clearance matcher:    recall {ours['recall']:.3f}  flagged {ours['flagged']:.2%}"
        f"  {ours['qps']:,.0f} q/s   by kind {ours['by_kind']}"
    )
    names = [n.name for n in matcher.names if not n.weak]
    owners = [n.entry.entry_id for n in matcher.names if not n.weak]
    sample, sample_common = queries[: args.baseline_queries], common[: args.baseline_queries]
    baselines = (
        ("token_sort_ratio", fuzz.token_sort_ratio),
        ("token_set_ratio", fuzz.token_set_ratio),
    )
    for label, scorer in baselines:
        base = run_baseline(scorer, names, owners, sample, sample_common)
        print(
            f"rapidfuzz {label:16s}: recall {base['recall']:.3f}  flagged {base['flagged']:.2%}"
            f"  {base['qps']:,.0f} q/s   (cutoff {CUTOFF}, {len(sample)} + {len(sample_common)}"
            " queries)"
        )


if __name__ == "__main__":
    main()
