"""The rule language: a restricted subset of Python expressions, parsed with :mod:`ast`,
checked against an allow-list and the event schemas, and translated to Python code.

Allowed: literals (``int``, ``float``, ``str``, ``True``/``False``; lists and tuples of
literals only after ``in``), comparisons (chains included), ``and``/``or``/``not``,
``+ - * / // %`` on numbers, unary ``-``/``+``, ``a if c else b``, ``in``/``not in``,
``NAMESPACE.name`` for the namespaces ``event``, ``account``, ``features`` and ``lists``,
``features.name[key]`` / ``features.name[key1, key2]`` with keys that are event fields or
literals, and calls of the registered functions (:mod:`fengkong.rules.functions`) plus three
special forms: ``in_list("name", value)``, ``has(event.NAME)`` and
``coalesce(event.NAME, fallback)``. Everything else is refused: other names, attribute
chains, dunder or private names, method calls, subscripts of anything but a feature,
lambdas, comprehensions, generators, f-strings, ``**``, bit operators, ``is``, walrus, starred
arguments, keywords, ``None``, bytes, and literals outside fixed bounds.

The checker is strict about types: ``and``/``or``/``not`` and ``if`` take booleans (no
truthiness), ordering comparisons take numbers, ``==`` compares like with like, a string
compared with an enum field must be one of the enum's values, and a value tested against a
list must be of the list's value kind (an ``ip`` is not a ``device``).

An optional event field (``OrderRequest.price``, absent on a market order) is read only
where the checker has proved it present, the way a type checker narrows ``T | None``: after
``has(event.price)`` in an ``and`` chain (``has(event.price) and event.price > 100``), after
``not has(event.price)`` in an ``or`` chain, in the branch of a conditional that its test
proves it in; or through ``coalesce(event.price, 0.0)``. Anywhere else its read is a load
error (``maybe_absent``), so no rule ever compares ``None``. The hoisted read itself is
``None`` when the field is absent (it runs before every rule); the test that proved the
field present runs first at run time, as ``and`` / ``or`` / ``if`` evaluate left to right.

The output of a successful check is Python code over *hoisted reads*: every event field,
feature value and list membership an evaluator needs is computed once into a local by the
:class:`ReadTable`, and the rule's code reads those locals. The generated code is built
from the checked tree only; no user text is ever evaluated.
"""

from __future__ import annotations

import ast
import difflib
import math
import warnings
from dataclasses import dataclass, field

from fengkong.rules.errors import Problem, ProblemCode
from fengkong.rules.functions import FUNCTIONS, Arg
from fengkong.rules.schema import NUMERIC, FieldType, Type

MAX_SOURCE_CHARS = 2_000
MAX_NODES = 400
MAX_DEPTH = 32
MAX_STR_LITERAL = 256
MAX_NUMBER_LITERAL = 10**18
MAX_LIST_LITERAL = 256

NAMESPACES = ("event", "account", "features", "lists")
ACCOUNT_FIELDS = {"opened_ts": Type.INT, "known": Type.BOOL}

_CONSTRUCT_NAMES = {
    "Lambda": "lambda",
    "ListComp": "list comprehension",
    "SetComp": "set comprehension",
    "DictComp": "dict comprehension",
    "GeneratorExp": "generator expression",
    "JoinedStr": "f-string",
    "FormattedValue": "f-string",
    "NamedExpr": "assignment expression (:=)",
    "Starred": "starred argument",
    "Await": "await",
    "Yield": "yield",
    "YieldFrom": "yield",
    "Dict": "dict literal",
    "Set": "set literal",
    "Slice": "slice",
}

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//"}
_BINOPS[ast.Mod] = "%"
_CMPOPS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}


@dataclass(frozen=True, slots=True)
class FeatureSig:
    """What the checker needs to know about a declared feature."""

    name: str
    type: Type
    key_fields: tuple[str, ...]
    key_types: tuple[Type, ...]
    semantic: str | None
    ref: str  # global name of the feature store in compiled code


@dataclass(frozen=True, slots=True)
class ListSig:
    name: str
    value_kind: str
    ref: str  # global name of the list's live-entry dict in compiled code

    @property
    def ranges_ref(self) -> str:
        """Global name of an ``ip`` list's networks (:class:`~fengkong.rules.lists.IpRanges`)."""
        return f"LR_{self.name}"


@dataclass(slots=True)
class ReadTable:
    """Hoisted reads of one compiled evaluator: one local per distinct read, in first-use
    order, each with the label a trace shows (``event.amount``, ``features.x[event.buyer]``)."""

    prefix: str = "v"
    lines: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    _by_key: dict[tuple, str] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)
    constants: dict[str, object] = field(default_factory=dict)
    # local -> (feature name, key code, read with the feature's own key fields): what the
    # fused step (:mod:`fengkong.rules.fused`) needs to inline a feature read
    features: dict[str, tuple[str, str, bool]] = field(default_factory=dict)
    # locals of optional event fields: None when absent, so only guarded code reads them
    optional: set[str] = field(default_factory=set)

    def constant(self, value: object) -> str:
        """A global name bound to ``value`` (a literal set built once, not per evaluation);
        an equal set already bound is reused (the same membership test has the same code)."""
        for name, bound in self.constants.items():
            if type(bound) is type(value) and bound == value:
                return name
        # the evaluator's constants are K0, K1 ...; an updater's (prefix "u") Ku0 ...: the
        # fused step holds both tables in one namespace
        tag = "" if self.prefix == "v" else self.prefix
        name = f"K{tag}{len(self.constants)}"
        self.constants[name] = value
        return name

    def read(self, key: tuple, label: str, code: str) -> str:
        local = self._by_key.get(key)
        if local is None:
            local = f"{self.prefix}{len(self._by_key)}"
            self._by_key[key] = local
            self.lines.append(f"{local} = {code}")
            self.labels[local] = label
        if local not in self.used:
            self.used.append(local)
        return local

    def start_expression(self) -> None:
        """Begin tracking the reads of one rule (for its trace)."""
        self.used = []


@dataclass(slots=True)
class Scope:
    """Where an expression is checked: the event kind and the pack's declarations."""

    kind_name: str
    fields: dict[str, FieldType]
    features: dict[str, FeatureSig]
    lists: dict[str, ListSig]
    reads: ReadTable


@dataclass(frozen=True, slots=True)
class Typed:
    """A checked sub-expression: its code and type, and what the checker knows about it."""

    code: str
    type: Type
    enum_values: frozenset[str] | None = None
    semantic: str | None = None
    local: str | None = None  # set for a hoisted read (a field, feature or account fact)
    label: str = ""
    literal: object = None
    is_literal: bool = False
    # optional event fields proven present when the (boolean) expression is true / false
    if_true: frozenset[str] = frozenset()
    if_false: frozenset[str] = frozenset()


_ERROR = Typed("None", Type.ERROR)
_NOTHING: frozenset[str] = frozenset()
SPECIAL_FORMS = ("coalesce", "has", "in_list")
_ARGUMENTS = {1: "one argument", 2: "two arguments"}  # has and coalesce


def parse_expression(text: object, path: str, problems: list[Problem]) -> ast.Expression | None:
    """Parse ``text`` with :func:`ast.parse` after length checks, then bound its size."""
    if not isinstance(text, str) or not text.strip():
        problems.append(Problem(path, ProblemCode.MISSING, "expected an expression text"))
        return None
    if len(text) > MAX_SOURCE_CHARS:
        problems.append(
            Problem(path, ProblemCode.TOO_LONG, f"{len(text)} characters > {MAX_SOURCE_CHARS}")
        )
        return None
    try:
        with warnings.catch_warnings():
            # "invalid decimal literal", invalid escapes...: the compiler's warnings about a
            # rule text are errors of that rule (they become SyntaxError), never stderr noise
            warnings.simplefilter("error", SyntaxWarning)
            warnings.simplefilter("error", DeprecationWarning)
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        line = exc.lineno or 1
        lines = text.strip().splitlines() or [""]
        # offset 0 means "at the end of the input"
        column = exc.offset or len(lines[min(line, len(lines)) - 1]) + 1
        problems.append(Problem(path, ProblemCode.SYNTAX, exc.msg, line, column))
        return None
    except (ValueError, RecursionError, MemoryError) as exc:
        reason = str(exc) or type(exc).__name__
        problems.append(Problem(path, ProblemCode.SYNTAX, f"cannot parse: {reason}"))
        return None
    count, depth = _size(tree)
    if count > MAX_NODES or depth > MAX_DEPTH:
        problems.append(
            Problem(
                path,
                ProblemCode.TOO_COMPLEX,
                f"{count} nodes, depth {depth}; the limits are {MAX_NODES} nodes and depth "
                f"{MAX_DEPTH}",
            )
        )
        return None
    return tree


def _size(tree: ast.AST) -> tuple[int, int]:
    """Node count and depth of ``tree``, without recursion."""
    count = 0
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        deepest = max(deepest, depth)
        if count > MAX_NODES:
            break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return count, deepest


class Checker:
    """Checks one parsed expression in a :class:`Scope` and emits its Python code."""

    def __init__(self, text: str, path: str, scope: Scope, problems: list[Problem]) -> None:
        self.text = text.strip()
        self.lines = self.text.splitlines() or [""]
        self.path = path
        self.scope = scope
        self.problems = problems
        self.present: frozenset[str] = _NOTHING  # optional fields proven present here

    # --- reporting ------------------------------------------------------------------------

    def fail(self, node: ast.AST, code: ProblemCode, message: str) -> Typed:
        line = getattr(node, "lineno", 1)
        offset = getattr(node, "col_offset", 0)
        source_line = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        column = len(source_line.encode()[:offset].decode(errors="ignore")) + 1
        self.problems.append(Problem(self.path, code, message, line, column))
        return _ERROR

    def mismatch(self, node: ast.AST, message: str) -> Typed:
        return self.fail(node, ProblemCode.TYPE_MISMATCH, message)

    # --- entry point ----------------------------------------------------------------------

    def check_bool(self, tree: ast.Expression) -> Typed:
        result = self.visit(tree.body)
        if result.type not in (Type.BOOL, Type.ERROR):
            return self.mismatch(tree.body, f"the expression is {result.type}, expected bool")
        return result

    def visit(self, node: ast.AST) -> Typed:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            name = type(node).__name__
            what = _CONSTRUCT_NAMES.get(name, name)
            return self.fail(node, ProblemCode.DISALLOWED_CONSTRUCT, f"{what} is not allowed")
        return method(node)

    # --- leaves ---------------------------------------------------------------------------

    def visit_Constant(self, node: ast.Constant) -> Typed:
        value = node.value
        if isinstance(value, bool):
            return Typed(repr(value), Type.BOOL, literal=value, is_literal=True)
        if isinstance(value, int):
            if abs(value) > MAX_NUMBER_LITERAL:
                return self.fail(node, ProblemCode.BAD_LITERAL, "integer literal out of range")
            return Typed(repr(value), Type.INT, literal=value, is_literal=True)
        if isinstance(value, float):
            if not math.isfinite(value) or abs(value) > MAX_NUMBER_LITERAL:
                return self.fail(node, ProblemCode.BAD_LITERAL, "number literal out of range")
            return Typed(repr(value), Type.NUMBER, literal=value, is_literal=True)
        if isinstance(value, str):
            if len(value) > MAX_STR_LITERAL:
                return self.fail(
                    node, ProblemCode.BAD_LITERAL, f"string literal over {MAX_STR_LITERAL} chars"
                )
            return Typed(repr(value), Type.STR, literal=value, is_literal=True)
        kind = "None" if value is None else type(value).__name__
        return self.fail(node, ProblemCode.BAD_LITERAL, f"{kind} literals are not allowed")

    def visit_Name(self, node: ast.Name) -> Typed:
        if node.id.startswith("_"):
            return self.fail(node, ProblemCode.DUNDER_NAME, f"name {node.id!r} is not allowed")
        if node.id in NAMESPACES:
            return self.fail(
                node, ProblemCode.DISALLOWED_CONSTRUCT, f"{node.id} needs a name: {node.id}.NAME"
            )
        if node.id in FUNCTIONS or node.id in SPECIAL_FORMS:
            return self.fail(node, ProblemCode.DISALLOWED_CONSTRUCT, f"{node.id} must be called")
        hint = _suggest(node.id, self.scope.fields)
        return self.fail(
            node,
            ProblemCode.UNKNOWN_NAME,
            f"unknown name {node.id!r}; names are read as event.NAME, account.NAME, "
            f"features.NAME or lists.NAME{hint}",
        )

    def visit_Attribute(self, node: ast.Attribute) -> Typed:
        if node.attr.startswith("_"):
            return self.fail(node, ProblemCode.DUNDER_NAME, f"name {node.attr!r} is not allowed")
        base = node.value
        if not isinstance(base, ast.Name) or base.id not in NAMESPACES:
            return self.fail(
                node,
                ProblemCode.DISALLOWED_CONSTRUCT,
                "attribute access is allowed only as event.NAME, account.NAME, features.NAME "
                "or lists.NAME",
            )
        namespace = base.id
        if namespace == "event":
            return self._event_field(node, node.attr)
        if namespace == "account":
            return self._account_fact(node, node.attr)
        if namespace == "features":
            return self._feature(node, node.attr, None)
        return self._list_ref(node, node.attr)

    def _unknown_field(self, node: ast.AST, name: str) -> Typed:
        hint = _suggest(name, self.scope.fields)
        return self.fail(
            node,
            ProblemCode.UNKNOWN_FIELD,
            f"{self.scope.kind_name} has no readable field {name!r}{hint}",
        )

    def _event_field(self, node: ast.AST, name: str) -> Typed:
        field_type = self.scope.fields.get(name)
        if field_type is None:
            return self._unknown_field(node, name)
        if field_type.optional and name not in self.present:
            return self.fail(
                node,
                ProblemCode.MAYBE_ABSENT,
                f"event.{name} may be absent ({self.scope.kind_name}.{name} is optional): "
                f"test it first, has(event.{name}) and ..., or read "
                f"coalesce(event.{name}, FALLBACK)",
            )
        code = f"_float(ev.{name})" if field_type.decimal else f"ev.{name}"
        if field_type.optional and field_type.decimal:
            code = f"None if ev.{name} is None else {code}"
        label = f"event.{name}"
        reads = self.scope.reads
        local = reads.read(("event", name), label, code)
        if field_type.optional:
            reads.optional.add(local)
        return Typed(
            local,
            field_type.type,
            enum_values=field_type.enum_values,
            semantic=field_type.semantic,
            local=local,
            label=label,
        )

    def _account_fact(self, node: ast.AST, name: str) -> Typed:
        if "account" not in self.scope.fields:
            return self.fail(
                node, ProblemCode.UNKNOWN_FIELD, f"{self.scope.kind_name} has no account field"
            )
        fact_type = ACCOUNT_FIELDS.get(name)
        if fact_type is None:
            hint = _suggest(name, ACCOUNT_FIELDS)
            return self.fail(node, ProblemCode.UNKNOWN_FIELD, f"no account.{name}{hint}")
        code = "(ev.account in ACCOUNTS)" if name == "known" else "ACCOUNTS.get(ev.account, 0)"
        label = f"account.{name}"
        local = self.scope.reads.read(("account", name), label, code)
        return Typed(local, fact_type, local=local, label=label)

    def _feature(self, node: ast.AST, name: str, keys: list[ast.AST] | None) -> Typed:
        sig = self.scope.features.get(name)
        if sig is None:
            hint = _suggest(name, self.scope.features)
            return self.fail(node, ProblemCode.UNKNOWN_FEATURE, f"no feature {name!r}{hint}")
        if keys is None:
            parts = []
            for key_field, key_type in zip(sig.key_fields, sig.key_types, strict=True):
                field_type = self.scope.fields.get(key_field)
                if field_type is None or field_type.type is not key_type:
                    return self.fail(
                        node,
                        ProblemCode.UNKNOWN_FIELD,
                        f"feature {name!r} is keyed by {', '.join(sig.key_fields)} but "
                        f"{self.scope.kind_name} has no {key_type} field {key_field!r}; "
                        f"name the key: features.{name}[event.FIELD]",
                    )
                parts.append((f"ev.{key_field}", f"event.{key_field}"))
            label = f"features.{name}"
        else:
            if len(keys) != len(sig.key_fields):
                return self.fail(
                    node,
                    ProblemCode.BAD_ARGUMENTS,
                    f"feature {name!r} takes {len(sig.key_fields)} key(s): "
                    f"{', '.join(sig.key_fields)}",
                )
            parts = []
            for key_node, key_type in zip(keys, sig.key_types, strict=True):
                key = self._key(key_node, key_type)
                if key.type is Type.ERROR:
                    return key
                parts.append((key.code, key.label))
            label = f"features.{name}[{', '.join(p[1] for p in parts)}]"
        key_code = parts[0][0] if len(parts) == 1 else f"_Pair({', '.join(p[0] for p in parts)})"
        reads = self.scope.reads
        local = reads.read(("feature", label), label, f"{sig.ref}.read({key_code}, now)")
        reads.features[local] = (name, key_code, keys is None)
        return Typed(local, sig.type, semantic=sig.semantic, local=local, label=label)

    def _key(self, node: ast.AST, expected: Type) -> Typed:
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "event"
            and not node.attr.startswith("_")
        ):
            key = self._event_field(node, node.attr)
            if key.type in (Type.ERROR, expected):
                return key
            return self.mismatch(node, f"key {key.label} is {key.type}, expected {expected}")
        if isinstance(node, ast.Constant):
            key = self.visit_Constant(node)
            if key.type in (Type.ERROR, expected):
                return Typed(key.code, key.type, label=key.code)
            return self.mismatch(node, f"key {key.code} is {key.type}, expected {expected}")
        return self.fail(
            node, ProblemCode.DISALLOWED_CONSTRUCT, "a feature key is an event field or a literal"
        )

    def _list_ref(self, node: ast.AST, name: str) -> Typed:
        sig = self.scope.lists.get(name)
        if sig is None:
            hint = _suggest(name, self.scope.lists)
            return self.fail(node, ProblemCode.UNKNOWN_LIST, f"no list {name!r}{hint}")
        return Typed(sig.ref, Type.LIST_REF, semantic=sig.value_kind, label=f"lists.{name}")

    def visit_Subscript(self, node: ast.Subscript) -> Typed:
        base = node.value
        if not (
            isinstance(base, ast.Attribute)
            and isinstance(base.value, ast.Name)
            and base.value.id == "features"
        ):
            return self.fail(
                node, ProblemCode.DISALLOWED_CONSTRUCT, "subscripts are allowed only on features"
            )
        if base.attr.startswith("_"):
            return self.fail(base, ProblemCode.DUNDER_NAME, f"name {base.attr!r} is not allowed")
        index = node.slice
        keys = list(index.elts) if isinstance(index, ast.Tuple) else [index]
        return self._feature(node, base.attr, keys)

    # --- operators ------------------------------------------------------------------------

    def visit_BoolOp(self, node: ast.BoolOp) -> Typed:
        conjunction = isinstance(node.op, ast.And)
        outer = self.present
        parts = []
        for value in node.values:  # each operand sees what the ones before it proved
            part = self.visit(value)
            parts.append(part)
            self.present |= part.if_true if conjunction else part.if_false
        self.present = outer
        for value, part in zip(node.values, parts, strict=True):
            if part.type not in (Type.BOOL, Type.ERROR):
                word = "and" if isinstance(node.op, ast.And) else "or"
                return self.mismatch(value, f"'{word}' takes booleans, got {part.type}")
        if any(part.type is Type.ERROR for part in parts):
            return _ERROR
        word = " and " if conjunction else " or "
        if conjunction:  # true: every operand was; false: what every operand's falsity proves
            if_true = _NOTHING.union(*(p.if_true for p in parts))
            if_false = frozenset.intersection(*(p.if_false for p in parts))
        else:
            if_true = frozenset.intersection(*(p.if_true for p in parts))
            if_false = _NOTHING.union(*(p.if_false for p in parts))
        code = f"({word.join(p.code for p in parts)})"
        return Typed(code, Type.BOOL, if_true=if_true, if_false=if_false)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Typed:
        operand = self.visit(node.operand)
        if operand.type is Type.ERROR:
            return _ERROR
        if isinstance(node.op, ast.Not):
            if operand.type is not Type.BOOL:
                return self.mismatch(node, f"'not' takes a boolean, got {operand.type}")
            return Typed(
                f"(not {operand.code})",
                Type.BOOL,
                if_true=operand.if_false,
                if_false=operand.if_true,
            )
        if isinstance(node.op, ast.USub | ast.UAdd):
            if operand.type not in NUMERIC:
                return self.mismatch(node, f"unary minus/plus takes a number, got {operand.type}")
            sign = "-" if isinstance(node.op, ast.USub) else "+"
            return Typed(f"({sign}{operand.code})", operand.type)
        return self.fail(node, ProblemCode.DISALLOWED_CONSTRUCT, "bitwise '~' is not allowed")

    def visit_BinOp(self, node: ast.BinOp) -> Typed:
        symbol = _BINOPS.get(type(node.op))
        if symbol is None:
            name = "'**'" if isinstance(node.op, ast.Pow) else type(node.op).__name__
            return self.fail(
                node, ProblemCode.DISALLOWED_CONSTRUCT, f"operator {name} is not allowed"
            )
        left, right = self.visit(node.left), self.visit(node.right)
        if Type.ERROR in (left.type, right.type):
            return _ERROR
        if left.type not in NUMERIC or right.type not in NUMERIC:
            return self.mismatch(
                node, f"'{symbol}' takes numbers, got {left.type} and {right.type}"
            )
        if symbol == "/" or Type.NUMBER in (left.type, right.type):
            result = Type.NUMBER
        else:
            result = Type.INT
        return Typed(f"({left.code} {symbol} {right.code})", result)

    def visit_IfExp(self, node: ast.IfExp) -> Typed:
        test = self.visit(node.test)
        outer = self.present
        self.present = outer | test.if_true
        body = self.visit(node.body)
        self.present = outer | test.if_false
        orelse = self.visit(node.orelse)
        self.present = outer
        if Type.ERROR in (test.type, body.type, orelse.type):
            return _ERROR
        if test.type is not Type.BOOL:
            return self.mismatch(node.test, f"the condition is {test.type}, expected bool")
        if body.type in NUMERIC and orelse.type in NUMERIC:
            result = Type.INT if body.type is orelse.type is Type.INT else Type.NUMBER
        elif body.type is orelse.type and body.type in (Type.STR, Type.BOOL):
            result = body.type
        else:
            return self.mismatch(node, f"branches are {body.type} and {orelse.type}")
        return Typed(f"({body.code} if {test.code} else {orelse.code})", result)

    def visit_Compare(self, node: ast.Compare) -> Typed:
        membership = [op for op in node.ops if isinstance(op, ast.In | ast.NotIn)]
        if membership and len(node.ops) > 1:
            return self.fail(
                node, ProblemCode.DISALLOWED_CONSTRUCT, "'in' cannot be chained; use 'and'"
            )
        if membership:
            return self._membership(node, node.left, node.comparators[0], node.ops[0])
        operands = [self.visit(node.left)] + [self.visit(c) for c in node.comparators]
        if any(o.type is Type.ERROR for o in operands):
            return _ERROR
        codes = [operands[0].code]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            symbol = _CMPOPS.get(type(op))
            if symbol is None:
                return self.fail(
                    node, ProblemCode.DISALLOWED_CONSTRUCT, f"'{type(op).__name__}' is not allowed"
                )
            problem = _comparable(symbol, left, right)
            if problem:
                return self.mismatch(node, problem)
            codes += [symbol, right.code]
        return Typed(f"({' '.join(codes)})", Type.BOOL)

    def _membership(self, node: ast.Compare, left_node, right_node, op) -> Typed:
        negate = isinstance(op, ast.NotIn)
        left = self.visit(left_node)
        if isinstance(right_node, ast.List | ast.Tuple):
            right = self._literal_list(right_node)
        else:
            right = self.visit(right_node)
        if Type.ERROR in (left.type, right.type):
            return _ERROR
        if right.type is Type.LIST_REF:
            member = self._list_member(node, left, right)
        elif right.type is Type.LIST:
            element = right.literal
            if element is not None and not (
                left.type is element or (left.type in NUMERIC and element in NUMERIC)
            ):
                return self.mismatch(node, f"{left.type} tested against a list of {element}")
            if left.enum_values is not None:
                unknown = sorted(
                    str(v) for v in right.enum_values or () if v not in left.enum_values
                )
                if unknown:
                    return self.mismatch(node, _enum_problem(left, unknown[0]))
            member = Typed(f"({left.code} in {right.code})", Type.BOOL)
        elif right.type is Type.STR and left.type is Type.STR:
            member = Typed(f"({left.code} in {right.code})", Type.BOOL)
        else:
            return self.mismatch(node, f"'in' cannot test {left.type} in {right.type}")
        if member.type is Type.ERROR:
            return member
        return Typed(f"(not {member.code})", Type.BOOL) if negate else member

    def _literal_list(self, node: ast.List | ast.Tuple) -> Typed:
        if len(node.elts) > MAX_LIST_LITERAL:
            return self.fail(node, ProblemCode.BAD_LITERAL, f"over {MAX_LIST_LITERAL} elements")
        values = []
        element: Type | None = None
        for item in node.elts:
            if not isinstance(item, ast.Constant):
                return self.fail(
                    item, ProblemCode.DISALLOWED_CONSTRUCT, "list elements must be literals"
                )
            typed = self.visit_Constant(item)
            if typed.type is Type.ERROR:
                return _ERROR
            if typed.type is Type.BOOL:
                return self.mismatch(item, "lists of booleans are not allowed")
            kind = Type.NUMBER if typed.type in NUMERIC else typed.type
            if element is not None and kind is not element:
                return self.mismatch(item, f"mixed list: {element} and {kind}")
            element = kind
            values.append(typed.literal)
        constant = self.scope.reads.constant(frozenset(values))
        strings = frozenset(v for v in values if isinstance(v, str))
        return Typed(constant, Type.LIST, literal=element, enum_values=strings)

    def _list_member(self, node: ast.AST, left: Typed, lst: Typed) -> Typed:
        if left.type is not Type.STR:
            return self.mismatch(node, f"{lst.label} holds strings, got {left.type}")
        if left.local is None:
            return self.fail(
                node,
                ProblemCode.DISALLOWED_CONSTRUCT,
                f"the value tested against {lst.label} must be an event field or a feature",
            )
        if left.semantic is not None and left.semantic != lst.semantic:
            return self.mismatch(
                node, f"{lst.label} holds {lst.semantic} values; {left.label} is a {left.semantic}"
            )
        label = f"{left.label} in {lst.label}"
        if lst.semantic == "ip":  # networks too, and any way of writing an address
            sig = self.scope.lists[lst.label.removeprefix("lists.")]
            code = f"_ip_member({lst.code}, {sig.ranges_ref}, {left.local}, now)"
        else:
            code = f"({lst.code}.get({left.local}, -1) > now)"
        local = self.scope.reads.read(("list", lst.label, left.local), label, code)
        return Typed(local, Type.BOOL, local=local, label=label)

    def visit_Call(self, node: ast.Call) -> Typed:
        func = node.func
        if not isinstance(func, ast.Name):
            if isinstance(func, ast.Attribute) and func.attr.startswith("_"):
                return self.fail(
                    func, ProblemCode.DUNDER_NAME, f"name {func.attr!r} is not allowed"
                )
            return self.fail(
                node, ProblemCode.DISALLOWED_CONSTRUCT, "only registered functions can be called"
            )
        if func.id.startswith("_"):
            return self.fail(node, ProblemCode.DUNDER_NAME, f"name {func.id!r} is not allowed")
        if node.keywords:
            return self.fail(node, ProblemCode.BAD_ARGUMENTS, "keyword arguments are not allowed")
        if func.id == "in_list":
            return self._in_list(node)
        if func.id == "has":
            return self._has(node)
        if func.id == "coalesce":
            return self._coalesce(node)
        function = FUNCTIONS.get(func.id)
        if function is None:
            known = ", ".join(sorted([*FUNCTIONS, *SPECIAL_FORMS]))
            return self.fail(
                node, ProblemCode.UNKNOWN_FUNCTION, f"no function {func.id!r}; known: {known}"
            )
        args = [self.visit(arg) for arg in node.args]
        if any(a.type is Type.ERROR for a in args):
            return _ERROR
        result = function.compile([Arg(a.code, a.type, a.literal) for a in args])
        if isinstance(result, str):
            return self.fail(node, ProblemCode.BAD_ARGUMENTS, result)
        code, result_type = result
        return Typed(code, result_type)

    def _in_list(self, node: ast.Call) -> Typed:
        if len(node.args) != 2 or not (
            isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
        ):
            return self.fail(
                node, ProblemCode.BAD_ARGUMENTS, "in_list takes a list name literal and a value"
            )
        lst = self._list_ref(node.args[0], node.args[0].value)
        value = self.visit(node.args[1])
        if Type.ERROR in (lst.type, value.type):
            return _ERROR
        return self._list_member(node, value, lst)

    def _optional_field(self, node: ast.Call, usage: str, arity: int) -> str | Typed:
        """The name of the optional event field that is the first argument of ``has`` or
        ``coalesce`` (checked: ``arity`` arguments, the first an event field that may be
        absent), or the problem reported."""
        if len(node.args) != arity:
            count = _ARGUMENTS[arity]
            return self.fail(node, ProblemCode.BAD_ARGUMENTS, f"{usage} takes {count}")
        first = node.args[0]
        if not (
            isinstance(first, ast.Attribute)
            and isinstance(first.value, ast.Name)
            and first.value.id == "event"
        ):
            return self.fail(node, ProblemCode.BAD_ARGUMENTS, f"{usage}: an event field")
        name = first.attr
        if name.startswith("_"):
            return self.fail(first, ProblemCode.DUNDER_NAME, f"name {name!r} is not allowed")
        field_type = self.scope.fields.get(name)
        if field_type is None:
            return self._unknown_field(first, name)
        if not field_type.optional:
            optional = ", ".join(n for n, f in self.scope.fields.items() if f.optional)
            return self.fail(
                first,
                ProblemCode.BAD_ARGUMENTS,
                f"event.{name} is always present in {self.scope.kind_name}; {usage} takes an "
                f"optional field ({optional or 'the kind has none'})",
            )
        return name

    def _has(self, node: ast.Call) -> Typed:
        """``has(event.NAME)``: whether the optional field is present; proves it present
        where the expression's truth guards."""
        usage = "has(event.NAME)"
        name = self._optional_field(node, usage, 1)
        if isinstance(name, Typed):
            return name
        label = f"has(event.{name})"
        local = self.scope.reads.read(("has", name), label, f"(ev.{name} is not None)")
        present = frozenset({name})
        return Typed(local, Type.BOOL, local=local, label=label, if_true=present)

    def _coalesce(self, node: ast.Call) -> Typed:
        """``coalesce(event.NAME, fallback)``: the optional field, or ``fallback`` (any
        expression of a compatible type) when it is absent."""
        usage = "coalesce(event.NAME, FALLBACK)"
        name = self._optional_field(node, usage, 2)
        if isinstance(name, Typed):
            return name
        outer = self.present
        self.present = outer | {name}
        value = self.visit(node.args[0])
        self.present = outer
        fallback = self.visit(node.args[1])
        if Type.ERROR in (value.type, fallback.type):
            return _ERROR
        if value.type in NUMERIC and fallback.type in NUMERIC:
            result = Type.INT if value.type is fallback.type is Type.INT else Type.NUMBER
        elif value.type is fallback.type:
            result = value.type
        else:
            return self.mismatch(
                node, f"coalesce's fallback is {fallback.type}, event.{name} is {value.type}"
            )
        known = value.enum_values
        if known is not None and not (fallback.is_literal and fallback.literal in known):
            known = None  # the fallback may be outside the enum: compare with any string
        code = f"({fallback.code} if {value.local} is None else {value.local})"
        return Typed(code, result, enum_values=known, semantic=value.semantic)


def _comparable(symbol: str, left: Typed, right: Typed) -> str:
    """Why ``left symbol right`` is ill-typed, or an empty string when it is fine."""
    if symbol in ("<", "<=", ">", ">="):
        if left.type in NUMERIC and right.type in NUMERIC:
            return ""
        return f"'{symbol}' compares numbers, got {left.type} and {right.type}"
    if not (left.type is right.type or (left.type in NUMERIC and right.type in NUMERIC)):
        return f"'{symbol}' compares like with like, got {left.type} and {right.type}"
    for enum_side, other in ((left, right), (right, left)):
        known = enum_side.enum_values
        if known is not None and other.is_literal and other.literal not in known:
            return _enum_problem(enum_side, str(other.literal))
    return ""


def _enum_problem(field: Typed, value: str) -> str:
    values = ", ".join(sorted(field.enum_values or ()))
    return f"{value!r} is not a value of {field.label} ({values})"


def _suggest(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
