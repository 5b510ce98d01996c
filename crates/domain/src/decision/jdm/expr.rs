//! The part of the ZEN expression language a policy can be made of: unary tests in decision
//! table cells (`> 5`, `[1..10]`, `(0..100]`, `"a", "b"`, `true`, `-`) and switch conditions
//! that are conjunctions of comparisons (`age_years >= 18 and region == "north"`). Anything
//! else is refused with what was found, never guessed at.

use rust_decimal::Decimal;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Literal {
    Number(Decimal),
    Text(String),
    Flag(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    /// `a op b` as `b flipped a`.
    fn flipped(self) -> Op {
        match self {
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Eq => Op::Eq,
            Op::Ne => Op::Ne,
        }
    }
}

/// One alternative of a unary test: the cell matches when any alternative does.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Test {
    Compare(Op, Literal),
    /// `[lo..hi]` and the like: each end included or not.
    Range {
        lo: Decimal,
        lo_included: bool,
        hi: Decimal,
        hi_included: bool,
    },
}

/// A comparison of an input field in a switch condition.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Atom {
    Compare {
        path: String,
        op: Op,
        value: Literal,
    },
    OneOf {
        path: String,
        values: Vec<Literal>,
        negated: bool,
    },
}

/// A switch condition: always true (empty or `true`), never, or all of its comparisons.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Condition {
    Always,
    Never,
    All(Vec<Atom>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(Decimal),
    Text(String),
    Name(String),
    Op(Op),
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Range,
}

fn lex(source: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        // A minus starts a number where no value precedes it: `-5`, `[-5..0]`, `> -1`.
        let after_value = matches!(
            tokens.last(),
            Some(
                Token::Number(_)
                    | Token::Text(_)
                    | Token::Name(_)
                    | Token::RBracket
                    | Token::RParen
            )
        );
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '[' => push(&mut tokens, &mut i, Token::LBracket, 1),
            ']' => push(&mut tokens, &mut i, Token::RBracket, 1),
            '(' => push(&mut tokens, &mut i, Token::LParen, 1),
            ')' => push(&mut tokens, &mut i, Token::RParen, 1),
            ',' => push(&mut tokens, &mut i, Token::Comma, 1),
            '.' if next == Some('.') => push(&mut tokens, &mut i, Token::Range, 2),
            '>' if next == Some('=') => push(&mut tokens, &mut i, Token::Op(Op::Ge), 2),
            '<' if next == Some('=') => push(&mut tokens, &mut i, Token::Op(Op::Le), 2),
            '>' => push(&mut tokens, &mut i, Token::Op(Op::Gt), 1),
            '<' => push(&mut tokens, &mut i, Token::Op(Op::Lt), 1),
            '=' if next == Some('=') => push(&mut tokens, &mut i, Token::Op(Op::Eq), 2),
            '!' if next == Some('=') => push(&mut tokens, &mut i, Token::Op(Op::Ne), 2),
            '&' if next == Some('&') => push(&mut tokens, &mut i, Token::Name("and".into()), 2),
            '|' if next == Some('|') => push(&mut tokens, &mut i, Token::Name("or".into()), 2),
            '!' => push(&mut tokens, &mut i, Token::Name("not".into()), 1),
            '"' | '\'' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|ch| *ch == c)
                    .ok_or_else(|| format!("a string opened with {c} is never closed"))?;
                let text: String = chars[i + 1..i + 1 + close].iter().collect();
                if text.contains('\\') {
                    return Err("escapes inside strings are not imported".to_owned());
                }
                tokens.push(Token::Text(text));
                i += close + 2;
            }
            d if d.is_ascii_digit()
                || (d == '-' && !after_value && next.is_some_and(|n| n.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() {
                    let ch = chars[i];
                    let decimal_point =
                        ch == '.' && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
                    if ch.is_ascii_digit() || ch == '_' || decimal_point {
                        i += 1;
                    } else {
                        break;
                    }
                }
                let text: String = chars[start..i].iter().filter(|ch| **ch != '_').collect();
                let number = text
                    .parse::<Decimal>()
                    .map_err(|_| format!("{text} is not a number lendcore can read"))?;
                tokens.push(Token::Number(number));
            }
            a if a.is_alphabetic() || a == '_' || a == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '$' | '.'))
                {
                    // A dot belongs to a path, not to a range that follows it.
                    if chars[i] == '.' && chars.get(i + 1) == Some(&'.') {
                        break;
                    }
                    i += 1;
                }
                tokens.push(Token::Name(chars[start..i].iter().collect()));
            }
            other => return Err(format!("`{other}` is not part of what lendcore imports")),
        }
    }
    Ok(tokens)
}

fn push(tokens: &mut Vec<Token>, i: &mut usize, token: Token, width: usize) {
    tokens.push(token);
    *i += width;
}

fn literal(token: &Token) -> Option<Literal> {
    match token {
        Token::Number(n) => Some(Literal::Number(*n)),
        Token::Text(t) => Some(Literal::Text(t.clone())),
        Token::Name(n) if n == "true" => Some(Literal::Flag(true)),
        Token::Name(n) if n == "false" => Some(Literal::Flag(false)),
        _ => None,
    }
}

/// A decision table cell, as the alternatives it matches; empty for `-` or an empty cell
/// (matches anything).
pub(super) fn unary(cell: &str) -> Result<Vec<Test>, String> {
    let cell = cell.trim();
    if cell.is_empty() || cell == "-" {
        return Ok(Vec::new());
    }
    let tokens = lex(cell)?;
    let mut tests = Vec::new();
    for part in tokens.split(|t| *t == Token::Comma) {
        tests.push(unary_part(part).ok_or_else(|| {
            format!(
                "`{cell}` is not a unary test lendcore imports (comparisons such as `> 5`, \
                 ranges such as `[1..10]` or `(0..100]`, lists of values, `true`/`false` and `-`)"
            )
        })?);
    }
    Ok(tests)
}

fn unary_part(part: &[Token]) -> Option<Test> {
    match part {
        [value] => literal(value).map(|v| Test::Compare(Op::Eq, v)),
        [Token::Op(op), value] => literal(value).map(|v| Test::Compare(*op, v)),
        [
            open,
            Token::Number(lo),
            Token::Range,
            Token::Number(hi),
            close,
        ] => {
            let lo_included = match open {
                Token::LBracket => true,
                Token::LParen | Token::RBracket => false,
                _ => return None,
            };
            let hi_included = match close {
                Token::RBracket => true,
                Token::RParen | Token::LBracket => false,
                _ => return None,
            };
            Some(Test::Range {
                lo: *lo,
                lo_included,
                hi: *hi,
                hi_included,
            })
        }
        _ => None,
    }
}

/// A switch statement's condition.
pub(super) fn condition(source: &str) -> Result<Condition, String> {
    let source = source.trim();
    if source.is_empty() {
        return Ok(Condition::Always);
    }
    let tokens = lex(source)?;
    let refuse = || {
        format!(
            "`{source}` is not a condition lendcore imports: comparisons of an input field with a \
             value (`>`, `>=`, `<`, `<=`, `==`, `!=`, `in [..]`), joined by `and`"
        )
    };
    if tokens
        .iter()
        .any(|t| matches!(t, Token::Name(n) if n == "or"))
    {
        return Err(format!(
            "`{source}` joins comparisons with `or`: write one switch statement per alternative"
        ));
    }
    let mut atoms = Vec::new();
    let mut never = false;
    for part in tokens.split(|t| matches!(t, Token::Name(n) if n == "and")) {
        let mut part = part;
        // Parentheses around one comparison change nothing.
        while let [Token::LParen, inner @ .., Token::RParen] = part {
            part = inner;
        }
        match part {
            [Token::Name(n)] if n == "true" => {}
            [Token::Name(n)] if n == "false" => never = true,
            [Token::Name(path)] => atoms.push(Atom::Compare {
                path: path.clone(),
                op: Op::Eq,
                value: Literal::Flag(true),
            }),
            [Token::Name(not), Token::Name(path)] if not == "not" => atoms.push(Atom::Compare {
                path: path.clone(),
                op: Op::Eq,
                value: Literal::Flag(false),
            }),
            [Token::Name(path), Token::Op(op), value] if literal(value).is_some() => {
                atoms.push(Atom::Compare {
                    path: path.clone(),
                    op: *op,
                    value: literal(value).ok_or_else(refuse)?,
                })
            }
            [value, Token::Op(op), Token::Name(path)] if literal(value).is_some() => {
                atoms.push(Atom::Compare {
                    path: path.clone(),
                    op: op.flipped(),
                    value: literal(value).ok_or_else(refuse)?,
                })
            }
            [Token::Name(path), rest @ ..] => {
                let (negated, list) = match rest {
                    [Token::Name(i), list @ ..] if i == "in" => (false, list),
                    [Token::Name(n), Token::Name(i), list @ ..] if n == "not" && i == "in" => {
                        (true, list)
                    }
                    _ => return Err(refuse()),
                };
                let [Token::LBracket, items @ .., Token::RBracket] = list else {
                    return Err(refuse());
                };
                let values = items
                    .split(|t| *t == Token::Comma)
                    .map(|item| match item {
                        [one] => literal(one),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(refuse)?;
                atoms.push(Atom::OneOf {
                    path: path.clone(),
                    values,
                    negated,
                });
            }
            _ => return Err(refuse()),
        }
    }
    Ok(if never {
        Condition::Never
    } else if atoms.is_empty() {
        Condition::Always
    } else {
        Condition::All(atoms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn unary_tests_read_as_comparisons_ranges_and_lists() {
        assert_eq!(unary(" - ").unwrap(), []);
        assert_eq!(unary("").unwrap(), []);
        assert_eq!(
            unary(">= 18").unwrap(),
            [Test::Compare(Op::Ge, Literal::Number(n("18")))]
        );
        assert_eq!(
            unary("< -2.5").unwrap(),
            [Test::Compare(Op::Lt, Literal::Number(n("-2.5")))]
        );
        assert_eq!(
            unary("(0..100]").unwrap(),
            [Test::Range {
                lo: n("0"),
                lo_included: false,
                hi: n("100"),
                hi_included: true
            }]
        );
        assert_eq!(
            unary("[-5..10)").unwrap(),
            [Test::Range {
                lo: n("-5"),
                lo_included: true,
                hi: n("10"),
                hi_included: false
            }]
        );
        assert_eq!(
            unary("\"north\", 'south'").unwrap(),
            [
                Test::Compare(Op::Eq, Literal::Text("north".into())),
                Test::Compare(Op::Eq, Literal::Text("south".into()))
            ]
        );
        assert_eq!(
            unary("true").unwrap(),
            [Test::Compare(Op::Eq, Literal::Flag(true))]
        );
        assert_eq!(
            unary("1, 2").unwrap(),
            [
                Test::Compare(Op::Eq, Literal::Number(n("1"))),
                Test::Compare(Op::Eq, Literal::Number(n("2")))
            ]
        );
        for refused in [
            "$ > 5 and $ < 10",
            "startsWith($, 'a')",
            "> x",
            "[1..]",
            "\"open",
            "null",
            "5 %",
        ] {
            assert!(unary(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn conditions_are_conjunctions_of_comparisons() {
        assert_eq!(condition("  ").unwrap(), Condition::Always);
        assert_eq!(condition("true").unwrap(), Condition::Always);
        assert_eq!(condition("x > 1 and false").unwrap(), Condition::Never);
        assert_eq!(
            condition("applicant.age_years >= 18 && (region == \"north\") and 5 < income").unwrap(),
            Condition::All(vec![
                Atom::Compare {
                    path: "applicant.age_years".into(),
                    op: Op::Ge,
                    value: Literal::Number(n("18"))
                },
                Atom::Compare {
                    path: "region".into(),
                    op: Op::Eq,
                    value: Literal::Text("north".into())
                },
                Atom::Compare {
                    path: "income".into(),
                    op: Op::Gt,
                    value: Literal::Number(n("5"))
                },
            ])
        );
        assert_eq!(
            condition("line_frozen and region not in ['a', 'b']").unwrap(),
            Condition::All(vec![
                Atom::Compare {
                    path: "line_frozen".into(),
                    op: Op::Eq,
                    value: Literal::Flag(true)
                },
                Atom::OneOf {
                    path: "region".into(),
                    values: vec![Literal::Text("a".into()), Literal::Text("b".into())],
                    negated: true
                },
            ])
        );
        assert!(condition("a > 1 or b > 2").unwrap_err().contains("or"));
        for refused in ["a + 1 > 2", "len(a) > 2", "a > b", "a in b"] {
            assert!(condition(refused).is_err(), "{refused}");
        }
    }
}
