"""Vet a criterion rule before polars sees it: an allow-list over its tokens and its syntax tree.

polars' SQL compiles (and runs, while compiling) subqueries and table functions such as
`x IN (SELECT a FROM read_csv('http://...'))` or `read_json('/etc/passwd')`, so a rule text is never
handed to `pl.sql_expr` unchecked. `vet_rule` accepts only

- column references (bare names, no `table.column`), numbers, single-quoted strings, TRUE/FALSE/NULL;
- comparison (`= <> != < <= > >=`), boolean (`AND OR NOT`) and arithmetic (`+ - * / %`) operators;
- `IN (...)` / `NOT IN (...)` over a list of literals, `BETWEEN ... AND ...`, `IS [NOT] NULL`,
  `CASE WHEN ... THEN ... [ELSE ...] END`;
- the scalar functions in ALLOWED_FUNCTIONS (the shipped criteria use FLOOR; the rest are arithmetic
  helpers that touch nothing but their arguments);

and refuses everything else (SELECT, FROM, subqueries, table functions, unknown functions, casts,
comments, quoted identifiers, backslashes, semicolons) with `RuleRefused`, naming the offending token.

It works in three layers, each stricter than the parser behind it, so that no difference between how
this module and polars read a text can smuggle anything through:
1. characters: outside string literals only letters, digits, `_`, blanks, `( ) , . < > = ! + - * / %`
   and quotes; no backslash anywhere (polars and sqlglot disagree about backslash escapes); no `--`
   or `/*` comments;
2. tokens (sqlglot's tokenizer): every token is of an allowed type, every name followed by `(` is an
   allowed function, and the bounds MAX_RULE_CHARS / MAX_RULE_TOKENS / MAX_RULE_DEPTH hold;
3. the syntax tree (sqlglot's parser): every node is of an allowed kind, IN lists hold literals only.

sqlglot is a pure-Python SQL parser (no network, no files); only its tokenizer and parser are used.
"""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Tokenizer, TokenType

MAX_RULE_CHARS = 2_000
"""Longest rule text accepted (after parameter substitution). The longest shipped rule is 97
characters; polars needs seconds for a rule of 1,000 ANDed terms and crashes at 10,000."""

MAX_RULE_TOKENS = 500
"""Most tokens (names, literals, operators, parentheses) in one rule; the longest shipped rule has 15."""

MAX_RULE_DEPTH = 16
"""Deepest nesting of parentheses and CASE in one rule; the shipped rules nest at most 1 deep."""

ALLOWED_FUNCTIONS: dict[str, type[exp.Expression]] = {
    "ABS": exp.Abs,
    "CEIL": exp.Ceil,
    "CEILING": exp.Ceil,
    "COALESCE": exp.Coalesce,
    "FLOOR": exp.Floor,
    "GREATEST": exp.Greatest,
    "LEAST": exp.Least,
    "NULLIF": exp.Nullif,
    "ROUND": exp.Round,
    "SIGN": exp.Sign,
    "SQRT": exp.Sqrt,
}
"""Scalar functions a rule may call (name -> sqlglot node). All compile in polars SQL."""

_ALLOWED_TOKENS = {
    TokenType.VAR, TokenType.NUMBER, TokenType.STRING,
    TokenType.L_PAREN, TokenType.R_PAREN, TokenType.COMMA,
    TokenType.EQ, TokenType.NEQ, TokenType.LT, TokenType.LTE, TokenType.GT, TokenType.GTE,
    TokenType.PLUS, TokenType.DASH, TokenType.STAR, TokenType.SLASH, TokenType.MOD,
    TokenType.AND, TokenType.OR, TokenType.NOT, TokenType.IN, TokenType.BETWEEN, TokenType.IS,
    TokenType.NULL, TokenType.TRUE, TokenType.FALSE,
    TokenType.CASE, TokenType.WHEN, TokenType.THEN, TokenType.ELSE, TokenType.END,
}

_ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren,
    exp.And, exp.Or, exp.Not, exp.Neg,
    exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod,
    exp.In, exp.Between, exp.Is, exp.Case, exp.If,
    *set(ALLOWED_FUNCTIONS.values()),
)

_PLAIN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ \t\r\n(),.<>=!+-*/%")

ALLOWED_SUMMARY = (
    "allowed: column names, numbers, 'strings', {parameters}, TRUE/FALSE/NULL, = <> != < <= > >=, "
    "AND OR NOT, + - * / %, IN (literals), BETWEEN, IS [NOT] NULL, CASE, and the functions "
    + ", ".join(sorted(ALLOWED_FUNCTIONS))
)


class RuleRefused(ValueError):
    """A rule text outside the allow-list; `token` is the offending token as written."""

    def __init__(self, token: str, why: str, syntax: bool = False):
        self.token = token
        self.why = why
        head = "SQL syntax error at" if syntax else "rule refused at"
        super().__init__(f"{head} {_quote(token)}: {why}")


def _quote(token: str, limit: int = 40) -> str:
    token = token if len(token) <= limit else token[: limit - 3] + "..."
    return '"' + token.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


def _check_characters(text: str) -> None:
    if len(text) > MAX_RULE_CHARS:
        raise RuleRefused(text[:20], f"the rule is {len(text):,} characters long; at most "
                          f"{MAX_RULE_CHARS:,} are allowed (MAX_RULE_CHARS)")
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            raise RuleRefused(c, "backslashes are not allowed in a rule")
        if c == "'":
            j = i + 1
            while True:
                k = text.find("'", j)
                if k < 0:
                    raise RuleRefused(text[i:], "unterminated string")
                if "\\" in text[j:k]:
                    raise RuleRefused("\\", "backslashes are not allowed in a rule")
                if k + 1 < n and text[k + 1] == "'":
                    j = k + 2
                    continue
                i = k + 1
                break
            continue
        if c not in _PLAIN:
            raise RuleRefused(c, f"character not allowed in a rule ({ALLOWED_SUMMARY})")
        if text.startswith("--", i) or text.startswith("/*", i):
            raise RuleRefused(text[i : i + 2], "comments are not allowed in a rule")
        i += 1


def _check_tokens(text: str) -> None:
    try:
        tokens = Tokenizer().tokenize(text)
    except SqlglotError as exc:
        raise RuleRefused(text[:20], str(exc).splitlines()[0][:120], syntax=True) from None
    if len(tokens) > MAX_RULE_TOKENS:
        raise RuleRefused(tokens[MAX_RULE_TOKENS].text, f"the rule has {len(tokens):,} tokens; at most "
                          f"{MAX_RULE_TOKENS:,} are allowed (MAX_RULE_TOKENS)")
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.token_type not in _ALLOWED_TOKENS:
            raise RuleRefused(tok.text, f"not allowed in a rule ({ALLOWED_SUMMARY})")
        if tok.token_type in (TokenType.L_PAREN, TokenType.CASE):
            depth += 1
            if depth > MAX_RULE_DEPTH:
                raise RuleRefused(tok.text, f"nested more than {MAX_RULE_DEPTH} deep (MAX_RULE_DEPTH)")
        elif tok.token_type in (TokenType.R_PAREN, TokenType.END):
            depth -= 1
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.token_type == TokenType.VAR:
            if following is not None and following.token_type == TokenType.L_PAREN:
                if tok.text.upper() not in ALLOWED_FUNCTIONS:
                    raise RuleRefused(tok.text, f"function not allowed ({ALLOWED_SUMMARY})")
            elif tok.text.upper() in ALLOWED_FUNCTIONS:
                raise RuleRefused(tok.text, "a function name must be followed by its arguments in ( )")


def _literal(node: exp.Expression) -> bool:
    while isinstance(node, exp.Neg | exp.Paren):
        node = node.this
    return isinstance(node, exp.Literal | exp.Boolean | exp.Null)


def _parse_problem(exc: SqlglotError, text: str) -> RuleRefused:
    """A sqlglot parse error as a refusal naming the token it stopped at."""
    errors = getattr(exc, "errors", None) or [{}]
    first = errors[0]
    token = first.get("highlight") or text[:20]
    why = str(first.get("description") or str(exc).splitlines()[0]).strip()
    if why.startswith("Required keyword"):
        why = "an operand is missing"
    return RuleRefused(token, why[:120], syntax=True)


def _check_tree(text: str) -> None:
    try:
        tree = sqlglot.parse_one(text)
    except SqlglotError as exc:
        raise _parse_problem(exc, text) from None
    except RecursionError:
        raise RuleRefused(text[:20], f"nested too deeply (MAX_RULE_DEPTH {MAX_RULE_DEPTH})") from None
    if tree is None:
        raise RuleRefused(text[:20], "empty rule")
    for node in tree.walk():
        if not isinstance(node, _ALLOWED_NODES):
            name = node.sql_name() if isinstance(node, exp.Func) else node.key.upper()
            if isinstance(node, exp.Alias):
                name = node.alias
            elif isinstance(node, exp.Binary) and node.left is not None and node.right is not None:
                whole, left, right = node.sql(), node.left.sql(), node.right.sql()
                if whole.startswith(left) and whole.endswith(right):
                    name = whole[len(left) : len(whole) - len(right)].strip() or name
            raise RuleRefused(name, f"not allowed in a rule ({ALLOWED_SUMMARY})")
        if isinstance(node, exp.Column) and (node.table or node.args.get("db") or node.args.get("catalog")):
            raise RuleRefused(node.sql(), "qualified names (table.column) are not allowed in a rule")
        if isinstance(node, exp.In):
            if any(node.args.get(k) is not None for k in ("query", "unnest", "field")):
                raise RuleRefused("IN", "IN takes a list of literals only")
            for item in node.expressions:
                if not _literal(item):
                    raise RuleRefused(item.sql()[:40], "IN takes a list of literals only")


@functools.lru_cache(maxsize=8192)
def vet_rule(text: str) -> None:
    """Raise RuleRefused unless `text` stays within the allow-list (see the module docstring).

    Pure, so accepted texts are remembered (a sweep validates the same rules at every grid point);
    refusals are not cached and are checked again."""
    _check_characters(text)
    _check_tokens(text)
    _check_tree(text)
