"""Rows of one generator with different settings (``vae``, ``vae[strategy=random]``, ...): a board note that puts
them side by side on utility, fidelity and memorisation, from the board's own numbers (the paper's comparison of
sampling strategies is the first use)."""
from __future__ import annotations

from mrsbench.generators.settings import split_label

# (column, short label, which way is better): the note's columns, all on the board already
NOTE_COLUMNS = (
    ("effective_n", "eff. n", "higher"),
    ("embedding.precision", "precision", "higher"),
    ("embedding.recall", "recall", "higher"),
    ("embedding.classifier_auc", "C2ST AUC", "closer to 0.5"),
    ("embedding.memorisation_ratio", "memorisation", "closer to 1"),
)


def variant_groups(lb: dict) -> dict[str, list[dict]]:
    """Generator name -> its rows, for generators with more than one settings variant on the board."""
    groups: dict[str, list[dict]] = {}
    for r in lb["rows"]:
        try:
            base, _ = split_label(r["model"])
        except Exception:   # a name that is not NAME[k=v]: not a variant
            continue
        groups.setdefault(base, []).append(r)
    return {b: rs for b, rs in groups.items() if len(rs) > 1}


def _defaults(base: str, keys) -> dict:
    """The registered generator's default of each setting in ``keys`` (text; empty when it is not installed here)."""
    try:
        from mrsbench.generators import registry
        from mrsbench.generators.settings import declared, format_value
        return {s.name: format_value(s.default) for s in declared(registry.get(base)) if s.name in keys}
    except Exception:
        return {}


def _settings_text(model: str, defaults: dict | None = None) -> str:
    """``strategy=random``; a setting the name leaves out is shown with its default (``strategy=hybrid (default)``)."""
    base, s = split_label(model)
    parts = [f"{k}={s[k]}" if k in s else f"{k}={defaults[k]} (default)" for k in sorted(set(s) | set(defaults or {}))]
    return ", ".join(parts) or "defaults"


def variants_note(lb: dict, main_key: str) -> list[dict]:
    """Per generator with variants: its rows' values of :data:`NOTE_COLUMNS` and one sentence naming which variant
    is best on each (ties within the board's significance tests are said as such)."""
    from mrsbench.boards.verdict import _sig
    out = []
    for base, rows in variant_groups(lb).items():
        d = _defaults(base, {k for r in rows for k in split_label(r["model"])[1]})
        text = lambda m: _settings_text(m, d)   # noqa: E731
        cols = [(main_key if k == "effective_n" else k, lab, better) for k, lab, better in NOTE_COLUMNS]
        table = [{"model": r["model"], "settings": text(r["model"]),
                  **{lab: (r.get(k) or {}).get("mean") for k, lab, _ in cols}} for r in rows]
        said = []
        for k, lab, better in cols:
            vals = [(r["model"], (r.get(k) or {}).get("mean")) for r in rows if (r.get(k) or {}).get("mean") is not None]
            if len(vals) < 2:
                continue
            target = 0.5 if "0.5" in better else 1.0 if "to 1" in better else None
            key = (lambda v: -abs(v - target)) if target is not None else (lambda v: v)
            best = max(vals, key=lambda mv: key(mv[1]))
            tied = [m for m, _ in vals if m != best[0] and _sig(lb, k, best[0], m) != -1]
            said.append(f"{lab}: {text(best[0])} ({best[1]:.3g})"
                        + (f", not significantly ahead of {', '.join(text(m) for m in tied)}" if tied else ""))
        out.append({"generator": base, "rows": table,
                    "sentence": f"{base} by settings, best on each ({'; '.join(said)})." if said else ""})
    return out
