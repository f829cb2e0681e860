"""Decompiler: a discrete Transformer Program -> one standalone, deterministic Python file.

The file defines ``run(tokens: list[str]) -> list[str]`` and needs only the standard library: it
inlines :mod:`programs.runtime` (the shared selection/aggregation semantics), one named function
per attention predicate and per MLP lookup table (enumerated over every pair of input values the
inputs can take; the default branch is the most common output), and the unembedding as per-
(variable, value) logit rows summed in the discrete model's order, so the program agrees with the
model on every input, including argmax ties. Dead code is pruned: a module is dropped when nothing
live reads its output and its unembedding rows are the same for every value it can take (its
constant row is then added without computing it).
"""

from __future__ import annotations

import inspect
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from programs import runtime
from programs.discrete import CatHead, DiscreteProgram, MLPTable, NumHead

_MARKER = "# --- runtime: inlined into exported programs below this line ---\n"


@dataclass(frozen=True)
class Analysis:
    """Reachable values per variable and the live modules of a program."""

    cat_domain: tuple[tuple[int, ...], ...]  # per categorical variable: reachable value ids
    cat_labels: tuple[dict[int, object], ...]  # per categorical variable: value id -> label
    num_domain: tuple[Sequence[int], ...]  # per numerical variable: a superset of its values
    live: frozenset[str]  # names of modules the program computes
    const_cat: frozenset[int]  # categorical variables replaced by a constant logit row


def analyse(prog: DiscreteProgram) -> Analysis:
    """Domains (categorical: exactly the values a variable can take on a valid input;
    numerical: a superset) and liveness."""
    shape = prog.shape
    cat_dom: list[tuple[int, ...]] = [()] * len(prog.cat_vars)
    labels: list[dict[int, object]] = [{}] * len(prog.cat_vars)
    num_dom: list[Sequence[int]] = [()] * len(prog.num_vars)
    cat_dom[0] = tuple(range(len(shape.input_vocab)))
    labels[0] = dict(enumerate(shape.input_vocab))
    cat_dom[1] = tuple(range(shape.n_ctx))
    labels[1] = {i: i for i in range(shape.n_ctx)}
    num_dom[0] = (1,)
    for module in prog.modules_in_order():
        if isinstance(module, CatHead):
            cat_dom[module.out] = cat_dom[module.value]
            labels[module.out] = labels[module.value]
        elif isinstance(module, NumHead):
            # a sum over at most n_ctx keys of the value (a range: sums of sums grow fast)
            num_dom[module.out] = range(shape.n_ctx * max(num_dom[module.value]) + 1)
        else:
            a, b = module.inputs
            if module.numerical:
                da, db = (_saturated(num_dom[i], shape.n_ctx) for i in module.inputs)
            else:
                da, db = cat_dom[a], cat_dom[b]
            out = sorted({module.table[x][y] for x in da for y in db})
            cat_dom[module.out] = tuple(out)
            labels[module.out] = {i: i for i in out}
    # Liveness, backwards: a variable is needed when its logit rows differ between its values
    # (numerical: a non-zero row) or a live module reads it.
    need_cat = {v for v in range(len(prog.cat_vars))
                if len({tuple(prog.unembed_cat[v][x]) for x in cat_dom[v]}) > 1}
    need_num = {v for v in range(len(prog.num_vars)) if prog.unembed_num[v].any()}
    live = set()
    for module in reversed(list(prog.modules_in_order())):
        needed = (module.out in need_num) if isinstance(module, NumHead) else (
            module.out in need_cat)
        if not needed:
            continue
        live.add(module.name)
        if isinstance(module, (CatHead, NumHead)):
            need_cat.update((module.query, module.key))
            if isinstance(module, CatHead):
                need_cat.add(module.value)
            else:
                need_num.add(module.value)
        elif module.numerical:
            need_num.update(module.inputs)
        else:
            need_cat.update(module.inputs)
    const = frozenset(v for v in range(2, len(prog.cat_vars)) if v not in need_cat)
    return Analysis(cat_domain=tuple(cat_dom), cat_labels=tuple(labels),
                    num_domain=tuple(num_dom), live=frozenset(live), const_cat=const)


def _saturated(domain, limit: int) -> tuple[int, ...]:
    """The values a numerical MLP reads from ``domain`` (non-negative; saturated at ``limit``)."""
    if isinstance(domain, range):
        return tuple(range(domain.start, min(domain.stop - 1, limit) + 1))
    return tuple(sorted({min(x, limit) for x in domain}))


def runtime_source() -> str:
    """The runtime helpers' source, as inlined into every exported program."""
    src = inspect.getsource(runtime)
    return src[src.index(_MARKER) + len(_MARKER):].strip() + "\n"


def _predicate(name: str, head, prog: DiscreteProgram, an: Analysis) -> list[str]:
    qlab, klab = an.cat_labels[head.query], an.cat_labels[head.key]
    kdom = set(an.cat_domain[head.key])
    groups: dict[int, list[int]] = {}
    for q in an.cat_domain[head.query]:
        if head.predicate[q] in kdom:
            groups.setdefault(head.predicate[q], []).append(q)
    lines = [f"def {name}(q, k):"]
    matched = [q for qs in groups.values() for q in qs]
    if matched and len(matched) == len(an.cat_domain[head.query]) and all(
            klab[t] == qlab[q] for t, qs in groups.items() for q in qs):
        return lines + ["    return k == q"]
    for target in sorted(groups):
        qs = groups[target]
        cond = (f"q == {qlab[qs[0]]!r}" if len(qs) == 1
                else "q in {" + ", ".join(repr(qlab[q]) for q in qs) + "}")
        lines += [f"    if {cond}:", f"        return k == {klab[target]!r}"]
    return lines + ["    return False"]


def _lookup(name: str, mlp: MLPTable, prog: DiscreteProgram, an: Analysis) -> list[str]:
    if mlp.numerical:
        doms = [_saturated(an.num_domain[i], prog.shape.n_ctx) for i in mlp.inputs]
        labs = [{v: v for v in d} for d in doms]
    else:
        doms = [an.cat_domain[i] for i in mlp.inputs]
        labs = [an.cat_labels[i] for i in mlp.inputs]
    outs = {(x, y): mlp.table[x][y] for x in doms[0] for y in doms[1]}
    counts = Counter(outs.values())
    default = min(counts, key=lambda v: (-counts[v], v))  # most common, then smallest
    table = name.upper()
    lines = [f"{table} = {{"]
    lines += [f"    ({labs[0][x]!r}, {labs[1][y]!r}): {out!r},"
              for (x, y), out in outs.items() if out != default]
    lines += ["}", "", "", f"def {name}(first, second):",
              f"    return lookup({table}, {default!r}, first, second)"]
    return lines


def _row(values) -> str:
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def decompile(prog: DiscreteProgram, *, title: str = "Transformer Program") -> str:
    """The program's Python source (same bytes for the same discrete program)."""
    an = analyse(prog)
    shape = prog.shape
    cat_names, num_names = prog.cat_vars, prog.num_vars
    out = [f'"""{title}: decompiled from a discrete Transformer Program.',
           "",
           "Generated by programs.decompile; standard library only. run(tokens) takes a token",
           f"list (first token BOS, at most {shape.n_ctx} tokens) and returns one label per",
           'position."""', "", "", runtime_source(), "",
           f"INPUT_VOCAB = {tuple(shape.input_vocab)!r}",
           f"OUTPUT_LABELS = {tuple(shape.output_vocab)!r}",
           f"N_CTX = {shape.n_ctx}", f"CAUSAL = {prog.causal}",
           f"PAD = {shape.pad!r}  # padding positions are never attention keys", ""]
    body = ["def run(tokens):",
            '    """One output label per input position."""',
            "    tokens = list(tokens)",
            "    if len(tokens) > N_CTX:",
            "        raise ValueError(f'at most {N_CTX} tokens, got {len(tokens)}')",
            "    for token in tokens:",
            "        if token not in INPUT_VOCAB:",
            "            raise ValueError(f'unknown token {token!r}')",
            "    positions = list(range(len(tokens)))",
            "    ones = [1] * len(tokens)",
            "    live = [token != PAD for token in tokens]"]
    for module in prog.modules_in_order():
        if module.name not in an.live:
            continue
        var = module.name
        if isinstance(module, (CatHead, NumHead)):
            kind = "categorical" if isinstance(module, CatHead) else "numerical"
            pred = f"predicate_{var}"
            reads = (f"query={cat_names[module.query]}, key={cat_names[module.key]}, value="
                     + (cat_names[module.value] if isinstance(module, CatHead)
                        else num_names[module.value]))
            out += ["", f"# layer {module.layer}, {kind} attention head {module.index}: "
                        f"{reads}", *_predicate(pred, module, prog, an), ""]
            q, k = cat_names[module.query], cat_names[module.key]
            if isinstance(module, CatHead):
                body += [f"    # layer {module.layer}, categorical head {module.index}",
                         f"    {var} = aggregate(select({k}, {q}, {pred}, CAUSAL, live), "
                         f"{cat_names[module.value]})"]
            else:
                body += [f"    # layer {module.layer}, numerical head {module.index}",
                         f"    {var} = numerical_aggregate({k}, {q}, {pred}, "
                         f"{num_names[module.value]}, CAUSAL, live)"]
        else:
            names = num_names if module.numerical else cat_names
            a, b = (names[i] for i in module.inputs)
            # the numerical tables stop at N_CTX; larger sums read as N_CTX
            args = [f"saturate({names[i]}, N_CTX)"
                    if module.numerical and max(an.num_domain[i]) > shape.n_ctx else names[i]
                    for i in module.inputs]
            kind = "numerical" if module.numerical else "categorical"
            fn = f"lookup_{var}"
            out += ["", f"# layer {module.layer}, {kind} MLP {module.index}: reads {a}, {b}",
                    *_lookup(fn, module, prog, an), ""]
            body += [f"    # layer {module.layer}, {kind} MLP {module.index}",
                     f"    {var} = {fn}({', '.join(args)})"]
    # Unembedding: same order as the discrete model (categorical variables, then numerical).
    out += ["", "# Unembedding: logits = bias + one row per (variable, value); argmax wins.",
            f"BIAS = {_row(prog.unembed_bias)}", ""]
    terms = []
    for v, name in enumerate(cat_names):
        table = f"UNEMBED_{name.upper()}"
        if v in an.const_cat:
            first = an.cat_domain[v][0]
            out.append(f"{table} = {_row(prog.unembed_cat[v][first])}  # constant (pruned)")
            terms.append(f"('const', None, {table})")
            continue
        lab = an.cat_labels[v]
        out.append(f"{table} = {{")
        out += [f"    {lab[x]!r}: {_row(prog.unembed_cat[v][x])}," for x in an.cat_domain[v]]
        out.append("}")
        terms.append(f"('cat', {name}, {table})")
    for v, name in enumerate(num_names):
        if not prog.unembed_num[v].any():
            continue  # adding zero changes no logit
        table = f"UNEMBED_{name.upper()}"
        out.append(f"{table} = {_row(prog.unembed_num[v])}")
        terms.append(f"('num', {name}, {table})")
    body += ["    terms = ["] + [f"        {t}," for t in terms] + [
        "    ]", "    return unembed(terms, BIAS, OUTPUT_LABELS, len(tokens))"]
    return "\n".join(out + ["", ""] + body) + "\n"


def load_program(source: str) -> dict:
    """Execute exported program source in a fresh namespace; returns that namespace."""
    namespace: dict = {"__name__": "transformer_program"}
    exec(compile(source, "<transformer_program>", "exec"), namespace)  # noqa: S102 - our output
    return namespace
