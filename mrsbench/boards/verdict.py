"""A board's verdict: reference rows as brackets, an order from dominance over questions, and one sentence.

The rule (written once; the user guide quotes it):

* **Questions, not a grand average.** Each headline column belongs to one question: utility (does filling up
  a short scan help), fidelity (two-sample statistics), honesty (noise realism, SNR inflation, quantification
  bias, failures), privacy (memorisation), reconstruction (latent models only). Within a question a model's
  rank is the mean of its columns' significance-aware ranks (1 + the number of models significantly better).
* **References are brackets, not contestants.** Rows whose generator declares ``board_role`` "floor" (no
  information beyond the short scan: bootstrap resamples it, smoothed fills it with its own line-broadened average,
  subset-lcm with its own LCM model fit) or "ceiling" (oracle: the simulator's own truth) are shown in their own
  band; every generator is placed on the utility scale between the strongest floor row and the ceiling ("x% of
  the way"), so that it is credited only for what it adds beyond denoising the short scan.
* **Order = dominance.** Generator A *beats* B on a question when A is significantly better than B (paired
  permutation test over subjects, Holm-corrected per column) in at least one of the question's columns and
  significantly worse in none. A *dominates* B when A beats B on at least one question both are scored on and B
  beats A on none. A generator's position is 1 + the number of generators that dominate it: the rows at
  position 1 are the Pareto front (no other generator is better on one question without being worse on
  another). Ties within a position are listed by their utility rank, then their main utility value.
* **Rank stability** is reported for the main question, the one the sentence leads with: how often each
  generator has the highest effective transients at the board's middle n over bootstrap replicates of subjects
  and seeds. The sentence names a single best generator only when its lead is significant.
"""
from __future__ import annotations

QUESTIONS = {   # family -> the question it answers (board headings)
    "utility": "Does filling up a short scan with it help?",
    "fidelity": "Do its transients look like real ones?",
    "honesty": "Are its transients honest (noise, SNR, quantification bias, failures)?",
    "privacy": "Does it copy its training transients?",
    "reconstruction": "Does it reconstruct held-out transients (latent models)?",
}
ROLES = ("floor", "ceiling", "peer")
FLOOR_WORDS = {"bootstrap": "resampling the short scan", "smoothed": "the short scan's own smoothed average",
               "subset-lcm": "the short scan's own LCM model fit"}   # peer: an existing augmentation tool shown for comparison, not ranked


def reference_role(model: str, card: dict | None) -> str | None:
    """"floor" / "ceiling" for a reference row, else None: the generator class's ``board_role`` (registered
    generators), else the model card's description ("reference row: ... adds no information" / "... truth")."""
    try:
        from mrsbench.generators import registry
        from mrsbench.generators.settings import split_label
        role = getattr(registry.get(split_label(model)[0]), "board_role", None)
        if role in ROLES:
            return role
        if role is not None:
            return None
    except Exception:   # a model not installed here: judge by its card
        pass
    desc = str((card or {}).get("description") or "").lower()
    if desc.startswith("peer row"):
        return "peer"
    if desc.startswith("reference row"):
        return "ceiling" if ("truth" in desc or "oracle" in desc) else "floor"
    return None


def _sig(lb: dict, key: str, a: str, b: str) -> int:
    """-1 when a is significantly better than b in column ``key``, 1 when b is, 0 otherwise. A pair that could not
    be tested (results without per-subject statistics, written by an older mrsbench) is judged by the plain order
    of its means, as the column ranks are."""
    for t in (lb.get("tests") or {}).get(key, []):
        if {t["a"], t["b"]} != {a, b}:
            continue
        if t.get("p") is None:
            break
        if t.get("significant"):
            return -1 if t["better"] == a else 1 if t["better"] == b else 0
        return 0
    else:
        if (lb.get("tests") or {}).get(key):
            return 0
    from mrsbench.metrics.resampling import badness
    rows = {r["model"]: r for r in lb["rows"]}
    direc = next((c["direction"] for c in lb["columns"] if c["metric"] == key), None)
    va, vb = (((rows.get(m) or {}).get(key) or {}).get("mean") for m in (a, b))
    if None in (va, vb, direc):
        return 0
    da, db = float(badness(va, direc)), float(badness(vb, direc))
    return -1 if da < db else 1 if db < da else 0


def beats(lb: dict, a: str, b: str, family: str) -> bool:
    """a significantly better than b in at least one column of ``family`` and significantly worse in none."""
    out = [_sig(lb, c["metric"], a, b) for c in lb["columns"] if c["family"] == family]
    return -1 in out and 1 not in out


def _has(row: dict, lb: dict, family: str) -> bool:
    return any(row.get(c["metric"]) is not None for c in lb["columns"] if c["family"] == family)


def apply_verdict(lb: dict, main_key: str) -> None:
    """Mark reference rows, order the generators by dominance over questions, place them between the brackets
    and write ``lb["verdict"]`` (one sentence) and ``lb["order_rule"]``. ``main_key``: the main utility column
    (effective transients at the board's middle n)."""
    rows = lb["rows"]
    fams = lb["families"]
    for r in rows:
        if "role" not in r:   # build() sets it (once per row: the lookup imports the generator's module)
            r["role"] = reference_role(r["model"], r.get("card"))
        r["question_ranks"] = dict(r.get("family_ranks") or {})
    gens = [r for r in rows if r["role"] is None]
    for r in gens:
        r["dominated_by"] = []
        r["beats"] = {f: [] for f in fams}
    for a in gens:
        for b in gens:
            if a is b:
                continue
            common = [f for f in fams if _has(a, lb, f) and _has(b, lb, f)]
            wins = [f for f in common if beats(lb, a["model"], b["model"], f)]
            for f in wins:
                a["beats"][f].append(b["model"])
            if wins and not any(beats(lb, b["model"], a["model"], f) for f in common):
                b["dominated_by"].append(a["model"])
    for r in gens:
        r["position"] = 1 + len(r["dominated_by"])
    for r in rows:
        if r["role"] is not None:
            r["position"] = None
    mean = lambda r: (r.get(main_key) or {}).get("mean")   # noqa: E731
    util_rank = lambda r: r["question_ranks"].get("utility", 99)   # noqa: E731
    gens.sort(key=lambda r: (r["position"], util_rank(r), -(mean(r) if mean(r) is not None else -1e9), r["model"]))
    refs = sorted((r for r in rows if r["role"] is not None), key=lambda r: ROLES.index(r["role"]))
    lb["rows"] = gens + refs
    floor = strongest_floor(refs, main_key)
    ceil = next((r for r in refs if r["role"] == "ceiling"), None)
    lb["floor_model"] = floor["model"] if floor else None
    f0, c0 = (mean(floor) if floor else None), (mean(ceil) if ceil else None)
    # the scale needs the ceiling above the floor; where the strongest floor row reaches the ceiling (denoising the
    # short scan scores as the simulator's truth does) no generator is placed on it, and the sentence says why
    lb["floor_reaches_ceiling"] = None not in (f0, c0) and c0 <= f0
    for r in gens + [r for r in refs if r["role"] == "peer"]:
        v = mean(r)
        r["bracket"] = (100.0 * (v - f0) / (c0 - f0)) if None not in (v, f0, c0) and c0 > f0 else None
    lb["references"] = [{"model": r["model"], "role": r["role"], main_key: mean(r)} for r in refs]
    lb["questions"] = {f: QUESTIONS.get(f, f) for f in fams}
    lb["order_rule"] = ORDER_RULE
    lb["verdict"] = verdict_sentence(lb, main_key)


def strongest_floor(rows: list, main_key: str) -> dict | None:
    """The "adds nothing" row (role floor: bootstrap, smoothed, subset-lcm) with the highest main utility: the best
    the short scan alone gives without a generator, so a generator is credited only for what it adds beyond it."""
    floors = [r for r in rows if r.get("role") == "floor"]
    if not floors:
        return None
    mean = lambda r: (r.get(main_key) or {}).get("mean")   # noqa: E731
    return max(floors, key=lambda r: (mean(r) is not None, mean(r) if mean(r) is not None else 0.0))


ORDER_RULE = ("Order: a generator's position is 1 + the number of generators that dominate it; A dominates B when A "
              "is significantly better than B in at least one column of some question and B is significantly better "
              "than A on no question (paired tests over subjects, Holm-corrected per column). Position 1 is the "
              "Pareto front. Reference rows are brackets, not ranked: the floor rows add no information beyond the short "
              "scan (bootstrap: its transients resampled; smoothed: its average line-broadened; subset-lcm: its own LCM "
              "model fit; each filled up with fresh noise of its level), the ceiling row is the simulator's truth "
              "(oracle). Generators are placed between the strongest floor row and the ceiling; a peer row (an existing "
              "augmentation tool) is placed on the same scale, not ranked.")


def verdict_sentence(lb: dict, main_key: str) -> str:
    """The board's answer in one or two sentences, from its statistics."""
    gens = [r for r in lb["rows"] if r.get("role") is None]
    if not gens:
        return "No generator on this board (reference rows only)."
    n = lb.get("middle_n", 20)
    gain_key = main_key.replace("effective_n", "gain")
    gaba_key = main_key.replace("effective_n", "effective_n_gaba")
    floor = strongest_floor(lb["rows"], main_key)
    val = lambda r, k: (r.get(k) or {}).get("mean")   # noqa: E731
    ranked = sorted((r for r in gens if val(r, main_key) is not None), key=lambda r: -val(r, main_key))
    parts = []
    if ranked:
        best = ranked[0]
        rivals = [r["model"] for r in ranked[1:] if _sig(lb, main_key, best["model"], r["model"]) != -1]
        lead = (f"{best['model']} is worth {val(best, gain_key):.1f}x the real transients" if val(best, gain_key)
                is not None else f"{best['model']} leads")
        if rivals:
            lead += f" (not significantly more than {', '.join(rivals)})"
        else:
            lead += " (significantly more than every other generator)" if len(ranked) > 1 else ""
        others = [f"{r['model']} {val(r, gain_key):.1f}x" for r in ranked[1:] if val(r, gain_key) is not None]
        s = f"For filling up a {n}-transient scan, {lead}" + (f"; {', '.join(others)}" if others else "")
        if floor is not None and val(floor, main_key) is not None:
            below = [r["model"] for r in ranked if _sig(lb, main_key, floor["model"], r["model"]) == -1]
            tied = [r["model"] for r in ranked if _sig(lb, main_key, floor["model"], r["model"]) == 0]
            what = FLOOR_WORDS.get(floor["model"], "the short scan alone")
            if below:
                s += f"; worse than {what} ({floor['model']}, {val(floor, gain_key):.1f}x): {', '.join(below)}"
            if tied:
                s += f"; no better than {what} ({floor['model']}, {val(floor, gain_key):.1f}x): {', '.join(tied)}"
        parts.append(s + ".")
    if lb.get("floor_reaches_ceiling") and floor is not None:
        ceil = next((r for r in lb["rows"] if r.get("role") == "ceiling"), None)
        parts.append(f"The short scan alone, denoised ({floor['model']}, {val(floor, gain_key):.1f}x), is worth as much "
                     f"as the simulator's truth ({ceil['model']}, {val(ceil, gain_key):.1f}x): no generator is placed "
                     "between them.")
    copied = [r["model"] for r in gens if "copied noise" in (r.get("flags") or [])]
    if copied:
        parts.append(f"Copied noise (their transients carry the short scan's own noise): {', '.join(copied)}.")
    gq = [r for r in gens if val(r, gaba_key) is not None]
    if gq:
        harm = [r["model"] for r in gq if val(r, gaba_key) < 0.9 * n]
        help_ = [r["model"] for r in gq if val(r, gaba_key) > 1.1 * n]
        rest = [r["model"] for r in gq if r["model"] not in harm and r["model"] not in help_]
        if harm and len(harm) == len(gq):
            q = "every generator harms it"
        elif not harm and not help_:
            q = "no generator changes it by more than 10%"
        else:
            verb = lambda names, v: f"{', '.join(names)} {v if len(names) > 1 else v + 's'}"   # noqa: E731
            q = "; ".join(x for x in (verb(help_, "help") + " it" if help_ else "",
                                      verb(harm, "harm") + " it" if harm else "",
                                      verb(rest, "change") + " it by less than 10%" if rest else "") if x)
        parts.append(f"On GABA+ quantification (effective transients by the GABA+/tCr error against the full scan, "
                     f"vs the {n} real transients alone): {q}.")
    peers = [r for r in lb["rows"] if r.get("role") == "peer" and val(r, gain_key) is not None]
    floor_name = floor["model"] if floor is not None else "the floor"
    if peers:
        parts.append("Peer augmentation tool" + ("s" if len(peers) > 1 else "") + " (not ranked): " + ", ".join(
            f"{r['model']} {val(r, gain_key):.1f}x" + (f", {r['bracket']:.0f}% of the way from {floor_name} to the ceiling"
                                                       if r.get("bracket") is not None else "")
            + (", copied noise" if "copied noise" in (r.get("flags") or []) else "") for r in peers) + ".")
    front = [r["model"] for r in gens if r.get("position") == 1]
    if len(front) > 1:
        parts.append(f"Not dominated on any question: {', '.join(front)}.")
    return " ".join(parts)
