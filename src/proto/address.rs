//! Parsing of MAIL / RCPT / VRFY path arguments, exactly as aiosmtpd 1.4.6 does it.
//!
//! aiosmtpd's `SMTP._getaddr(arg)` hands the argument to CPython 3.11's
//! `email._header_value_parser`: `get_angle_addr` when the argument (after
//! `lstrip()`) starts with `<`, `get_addr_spec` otherwise, and then reads the
//! parsed token's `.addr_spec` property.  That parser is an RFC 5322 header
//! parser with many quirks (comments and folding white space everywhere, the
//! obsolete local-part and route syntaxes, RFC 2047 encoded words, quoting rules
//! of its own, and a few places where it raises an exception other than
//! `HeaderParseError`).  This module re-implements its behaviour for these
//! entry points, including the quirks, so that replies match byte for byte.
//!
//! [`parse_path`] is the everyday entry point.  [`parse_path_checked`] also
//! reports the inputs for which Python raises an unexpected exception (for
//! example `IndexError` for `anne@`), which aiosmtpd turns into a
//! `500 Error: (IndexError) string index out of range` reply.

use std::fmt;

/// What aiosmtpd's `_getaddr` makes of a MAIL/RCPT/VRFY argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedPath<'a> {
    /// The argument was empty (aiosmtpd returns ('', '')).
    Empty,
    /// The parser raised HeaderParseError (aiosmtpd replies 553 malformed address).
    Malformed,
    /// `addr` is the parsed token's `.addr_spec` string exactly as Python returns it
    /// (e.g. "<>" for a null path `<>`, comments and source routes removed, quoting as Python renders it);
    /// `rest` is the unparsed remainder (a suffix slice of the input) which aiosmtpd then parses as ESMTP parameters.
    Address {
        /// The address, as Python's `.addr_spec` renders it.
        addr: String,
        /// The unparsed remainder of the argument.
        rest: &'a str,
    },
}

/// A Python exception other than `HeaderParseError` escaping from `_getaddr`.
///
/// aiosmtpd does not catch these in the command handler; its generic handler
/// answers `500` followed by this value's `Display` form, i.e.
/// `500 Error: (IndexError) string index out of range`, and the session goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PyException {
    /// The Python exception class name, e.g. `IndexError`.
    pub type_name: &'static str,
    /// `str()` of the exception, e.g. `string index out of range`.
    pub message: &'static str,
}

/// Formats the text aiosmtpd sends after the code 500: `Error: (<type>) <message>`.
impl fmt::Display for PyException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error: ({}) {}", self.type_name, self.message)
    }
}

const INDEX_STR: PyException = PyException {
    type_name: "IndexError",
    message: "string index out of range",
};
const INDEX_LIST: PyException = PyException {
    type_name: "IndexError",
    message: "list index out of range",
};
const ATTR_DEFECT: PyException = PyException {
    type_name: "AttributeError",
    message: "'InvalidHeaderDefect' object has no attribute 'value'",
};
const UNBOUND_POS: PyException = PyException {
    type_name: "UnboundLocalError",
    message: "cannot access local variable 'pos' where it is not associated with a value",
};
const RECURSION_CALL: PyException = PyException {
    type_name: "RecursionError",
    message: "maximum recursion depth exceeded while calling a Python object",
};
const RECURSION_STR: PyException = PyException {
    type_name: "RecursionError",
    message: "maximum recursion depth exceeded while getting the str of an object",
};
const RECURSION_PLAIN: PyException = PyException {
    type_name: "RecursionError",
    message: "maximum recursion depth exceeded",
};

/// Parses a MAIL/RCPT/VRFY argument like aiosmtpd's `_getaddr`.
///
/// Inputs for which Python raises an exception other than `HeaderParseError`
/// are reported as [`ParsedPath::Malformed`]; use [`parse_path_checked`] to tell
/// them apart.  In the rare case where Python's remainder is not a suffix of the
/// argument (only possible with RFC 2047 encoded words that decode to special
/// characters), `rest` is the longest suffix of `arg` that ends Python's remainder.
pub fn parse_path(arg: &str) -> ParsedPath<'_> {
    parse_path_checked(arg).unwrap_or(ParsedPath::Malformed)
}

/// Like [`parse_path`], but reports the Python exceptions (other than
/// `HeaderParseError`) that aiosmtpd would let escape from `_getaddr`.
pub fn parse_path_checked(arg: &str) -> Result<ParsedPath<'_>, PyException> {
    if arg.is_empty() {
        return Ok(ParsedPath::Empty);
    }
    let angle = py_lstrip(arg).starts_with('<');
    let parsed = if angle {
        get_angle_addr(arg)
    } else {
        get_addr_spec(arg, STR_BUDGET).map(|(spec, rem)| (Some(spec), rem))
    };
    let (spec, rem) = match parsed {
        Ok(found) => found,
        Err(Fail::Parse) => return Ok(ParsedPath::Malformed),
        Err(Fail::Py(exc)) => return Err(exc),
    };
    let addr = match &spec {
        None => Ok("<>".to_owned()),
        Some(spec) if angle => spec.angle_addr_spec(),
        Some(spec) => spec.addr_spec(),
    };
    // The properties only fail with Python exceptions, never with HeaderParseError.
    let addr = addr.map_err(|fail| match fail {
        Fail::Py(exc) => exc,
        Fail::Parse => INDEX_LIST,
    })?;
    let rest = match rem {
        Rem::In(rest) => rest,
        Rem::Own(rest) => common_suffix(arg, &rest),
    };
    Ok(ParsedPath::Address { addr, rest })
}

/// The longest suffix of `arg` that is also a suffix of `other`.
fn common_suffix<'a>(arg: &'a str, other: &str) -> &'a str {
    let mut start = arg.len();
    for ((i, a), b) in arg.char_indices().rev().zip(other.chars().rev()) {
        if a != b {
            break;
        }
        start = i;
    }
    arg.get(start..).unwrap_or("")
}

// ---------------------------------------------------------------------------
// Errors and character classes
// ---------------------------------------------------------------------------

/// Why a parse step stopped: `HeaderParseError`, or another Python exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Parse,
    Py(PyException),
}

type Res<T> = Result<T, Fail>;

/// Python's `value[0]`: the first character, or `IndexError` when empty.
fn at0(v: &str) -> Res<char> {
    v.chars().next().ok_or(Fail::Py(INDEX_STR))
}

/// `value[1:]` where `value` is known to start with `c`.
fn skip(v: &str, c: char) -> &str {
    v.get(c.len_utf8()..).unwrap_or("")
}

fn starts(v: &str, pred: fn(char) -> bool) -> bool {
    v.chars().next().is_some_and(pred)
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_cfws_leader(c: char) -> bool {
    c == ' ' || c == '\t' || c == '('
}

fn is_special(c: char) -> bool {
    matches!(c, '(' | ')' | '<' | '>' | '@' | ',' | ':' | ';' | '.' | '\\' | '"' | '[' | ']')
}

fn is_atom_end(c: char) -> bool {
    is_special(c) || is_wsp(c)
}

fn is_dot_atom_end(c: char) -> bool {
    c != '.' && is_atom_end(c)
}

fn is_phrase_end(c: char) -> bool {
    matches!(c, '>' | '<' | '[' | ')' | ':' | ';' | ',' | ']' | '@' | '\\')
}

/// Python's `str.isspace()` for one character.
fn py_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..=' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

fn py_lstrip(v: &str) -> &str {
    v.trim_start_matches(py_space)
}

fn quote_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------
// The token tree (the parts of the Python classes that decide the result)
// ---------------------------------------------------------------------------

/// How a terminal renders: `ValueTerminal`, `WhiteSpaceTerminal` or `EWWhiteSpaceTerminal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TermKind {
    Value,
    Space,
    EwSpace,
}

/// The token types of terminals that matter to the properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TermType {
    Dot,
    Fws,
    Other,
}

/// The `TokenList` subclasses that behave differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Plain,
    QuotedString,
    BareQuotedString,
    Cfws,
    Comment,
    EncodedWord,
}

#[derive(Debug, Clone)]
enum Tok {
    Term {
        kind: TermKind,
        ty: TermType,
        text: String,
    },
    List {
        kind: ListKind,
        items: Vec<Tok>,
    },
    /// An `InvalidHeaderDefect` that CPython appends into a domain-literal token list.
    Defect,
}

impl Tok {
    fn term(kind: TermKind, ty: TermType, text: &str) -> Tok {
        Tok::Term {
            kind,
            ty,
            text: text.to_owned(),
        }
    }

    fn value_term(text: &str) -> Tok {
        Tok::term(TermKind::Value, TermType::Other, text)
    }

    fn dot() -> Tok {
        Tok::term(TermKind::Value, TermType::Dot, ".")
    }

    fn list(kind: ListKind, items: Vec<Tok>) -> Tok {
        Tok::List { kind, items }
    }

    fn is_dot(&self) -> bool {
        matches!(self, Tok::Term { ty: TermType::Dot, .. })
    }

    fn is_cfws(&self) -> bool {
        matches!(self, Tok::List { kind: ListKind::Cfws, .. })
    }

    fn is_fws(&self) -> bool {
        matches!(self, Tok::Term { ty: TermType::Fws, .. })
    }

    fn is_encoded_word(&self) -> bool {
        matches!(self, Tok::List { kind: ListKind::EncodedWord, .. })
    }

    /// `token[:0] = [leader]`.
    fn prepend(&mut self, leader: Option<Tok>) {
        if let (Some(leader), Tok::List { items, .. }) = (leader, self) {
            items.insert(0, leader);
        }
    }

    /// Python's `.value`.
    fn value(&self, out: &mut String) -> Res<()> {
        match self {
            Tok::Term { kind, text, .. } => match kind {
                TermKind::Value => out.push_str(text),
                TermKind::Space => out.push(' '),
                TermKind::EwSpace => {}
            },
            Tok::List { kind, items } => match kind {
                ListKind::Cfws | ListKind::Comment => out.push(' '),
                ListKind::BareQuotedString => {
                    for item in items {
                        item.to_str(out, 0, usize::MAX)?;
                    }
                }
                _ => {
                    for item in items {
                        item.value(out)?;
                    }
                }
            },
            Tok::Defect => return Err(Fail::Py(ATTR_DEFECT)),
        }
        Ok(())
    }

    /// Python's `str()`.  `level` counts the enclosing comments and `budget` is
    /// the Python stack depth available, since nested comments are where
    /// CPython can hit its recursion limit.
    fn to_str(&self, out: &mut String, level: usize, budget: usize) -> Res<()> {
        match self {
            Tok::Term { kind, text, .. } => {
                if *kind != TermKind::EwSpace {
                    out.push_str(text);
                }
            }
            Tok::List { kind, items } => match kind {
                ListKind::BareQuotedString => {
                    let mut inner = String::new();
                    for item in items {
                        item.to_str(&mut inner, level, budget)?;
                    }
                    out.push_str(&quote_string(&inner));
                }
                ListKind::Comment => {
                    // Deepest frame reached: `str()` (1), `__str__` (2), the list
                    // comprehension (3), `quote()` (4) and `str()` of a child (5).
                    let reach = 4 * level + if items.is_empty() { 3 } else { 5 };
                    if reach > budget {
                        // The frame that overflows is the one at depth `budget + 1`.
                        return Err(Fail::Py(if (budget + 1) % 4 == 1 {
                            RECURSION_STR
                        } else {
                            RECURSION_PLAIN
                        }));
                    }
                    out.push('(');
                    for item in items {
                        if matches!(item, Tok::List { kind: ListKind::Comment, .. }) {
                            item.to_str(out, level + 1, budget)?;
                        } else {
                            let mut inner = String::new();
                            item.to_str(&mut inner, level, budget)?;
                            for c in inner.chars() {
                                if matches!(c, '\\' | '(' | ')') {
                                    out.push('\\');
                                }
                                out.push(c);
                            }
                        }
                    }
                    out.push(')');
                }
                _ => {
                    for item in items {
                        item.to_str(out, level, budget)?;
                    }
                }
            },
            Tok::Defect => out.push_str("end of input inside domain-literal"),
        }
        Ok(())
    }
}

/// Python stack depth left for `str(local_part)` under `get_addr_spec` in a
/// warmed-up `python -m aiosmtpd` server (calibrated against aiosmtpd 1.4.6 on
/// CPython 3.11; one less under `get_angle_addr`).  Each nested comment costs
/// four levels: `str()`, `Comment.__str__`, its list comprehension, `quote()`.
const STR_BUDGET: usize = 973;
/// Comment nesting at which CPython's recursive `get_comment` runs out of stack
/// (unreachable within aiosmtpd's command line limits).
const PARSE_COMMENT_NESTING_LIMIT: usize = 981;

fn values_of(items: &[Tok], out: &mut String) -> Res<()> {
    for item in items {
        item.value(out)?;
    }
    Ok(())
}

/// One element of the temporary list built by `LocalPart.local_part`.
#[derive(Clone, Copy)]
enum Piece<'t> {
    Tok(&'t Tok),
    /// `TokenList(some_slice)`: a plain token list.
    Slice(&'t [Tok]),
}

impl<'t> Piece<'t> {
    fn is_dot(self) -> bool {
        matches!(self, Piece::Tok(tok) if tok.is_dot())
    }

    fn items(self) -> &'t [Tok] {
        match self {
            Piece::Tok(Tok::List { items, .. }) => items,
            Piece::Slice(items) => items,
            Piece::Tok(_) => &[],
        }
    }

    fn value(self, out: &mut String) -> Res<()> {
        match self {
            Piece::Tok(tok) => tok.value(out),
            Piece::Slice(items) => values_of(items, out),
        }
    }
}

/// `LocalPart.local_part` for a local part whose only child is `tok`.
fn local_part_prop(tok: &Tok) -> Res<String> {
    let dot = Tok::dot();
    let children: &[Tok] = match tok {
        Tok::List { items, .. } => items,
        _ => &[],
    };
    let mut res: Vec<Piece<'_>> = vec![Piece::Tok(&dot)];
    let mut last = Piece::Tok(&dot);
    let mut last_is_tl = false;
    for child in children.iter().chain(std::iter::once(&dot)) {
        if child.is_cfws() {
            continue;
        }
        if last_is_tl && child.is_dot() {
            let last_items = last.items();
            let (final_item, init) = last_items.split_last().ok_or(Fail::Py(INDEX_LIST))?;
            if final_item.is_cfws() {
                if let Some(slot) = res.last_mut() {
                    *slot = Piece::Slice(init);
                }
            }
        }
        let is_tl = matches!(child, Tok::List { .. });
        let mut pushed = Piece::Tok(child);
        if is_tl && last.is_dot() {
            let items = Piece::Tok(child).items();
            let (first, tail) = items.split_first().ok_or(Fail::Py(INDEX_LIST))?;
            if first.is_cfws() {
                pushed = Piece::Slice(tail);
            }
        }
        res.push(pushed);
        last = pushed;
        last_is_tl = is_tl;
    }
    let mut out = String::new();
    let inner = res.get(1..res.len().saturating_sub(1)).unwrap_or(&[]);
    for piece in inner {
        piece.value(&mut out)?;
    }
    Ok(out)
}

/// A parsed `addr-spec`: the local part's child token and the domain, if any.
#[derive(Debug)]
struct AddrSpec {
    local: Tok,
    domain: Option<Tok>,
}

impl AddrSpec {
    /// `AddrSpec.addr_spec`.
    fn addr_spec(&self) -> Res<String> {
        let local = local_part_prop(&self.local)?;
        let mut out = if local.chars().any(is_dot_atom_end) {
            quote_string(&local)
        } else {
            local
        };
        if let Some(domain) = &self.domain {
            let mut value = String::new();
            domain.value(&mut value)?;
            out.push('@');
            out.extend(value.chars().filter(|c| !py_space(*c)));
        }
        Ok(out)
    }

    /// `AngleAddr.addr_spec` (identical to `addr_spec` unless the local part is empty).
    fn angle_addr_spec(&self) -> Res<String> {
        let local = local_part_prop(&self.local)?;
        if local.is_empty() {
            Ok(quote_string(&local) + &self.addr_spec()?)
        } else {
            self.addr_spec()
        }
    }
}

/// The remaining input: normally a suffix of what was parsed, but an owned
/// string when the obsolete local-part re-parse stopped inside re-rendered text.
#[derive(Debug)]
enum Rem<'b> {
    In(&'b str),
    Own(String),
}

// ---------------------------------------------------------------------------
// The parser functions
// ---------------------------------------------------------------------------

fn get_angle_addr(v: &str) -> Res<(Option<AddrSpec>, Rem<'_>)> {
    let mut v = v;
    if is_cfws_leader(at0(v)?) {
        v = get_cfws(v)?.1;
    }
    if !v.starts_with('<') {
        return Err(Fail::Parse);
    }
    v = skip(v, '<');
    if at0(v)? == '>' {
        return Ok((None, Rem::In(skip(v, '>'))));
    }
    let budget = STR_BUDGET - 1;
    let (spec, rem) = match get_addr_spec(v, budget) {
        Ok(found) => found,
        Err(Fail::Parse) => {
            let after_route = get_obs_route(v)?;
            get_addr_spec(after_route, budget)?
        }
        Err(fail) => return Err(fail),
    };
    let rem = match rem {
        Rem::In(v) => Rem::In(angle_addr_tail(v)?),
        Rem::Own(s) => Rem::Own(angle_addr_tail(&s)?.to_owned()),
    };
    Ok((Some(spec), rem))
}

fn angle_addr_tail(v: &str) -> Res<&str> {
    let mut v = v;
    if v.starts_with('>') {
        v = skip(v, '>');
    }
    if starts(v, is_cfws_leader) {
        v = get_cfws(v)?.1;
    }
    Ok(v)
}

/// `get_addr_spec`; `budget` is the stack depth left for `str()` (see [`STR_BUDGET`]).
fn get_addr_spec(v: &str, budget: usize) -> Res<(AddrSpec, Rem<'_>)> {
    let (local, rem) = get_local_part(v, budget)?;
    match rem {
        Rem::In(v) => {
            let (domain, v) = addr_spec_domain(v)?;
            Ok((AddrSpec { local, domain }, Rem::In(v)))
        }
        Rem::Own(s) => {
            let (domain, v) = addr_spec_domain(&s)?;
            let rest = v.to_owned();
            Ok((AddrSpec { local, domain }, Rem::Own(rest)))
        }
    }
}

fn addr_spec_domain(v: &str) -> Res<(Option<Tok>, &str)> {
    if !v.starts_with('@') {
        return Ok((None, v));
    }
    let (domain, v) = get_domain(skip(v, '@'))?;
    Ok((Some(domain), v))
}

fn get_local_part(v: &str, budget: usize) -> Res<(Tok, Rem<'_>)> {
    let mut v = v;
    let mut leader = None;
    if is_cfws_leader(at0(v)?) {
        let (tok, rest) = get_cfws(v)?;
        leader = Some(tok);
        v = rest;
    }
    if v.is_empty() {
        return Err(Fail::Parse);
    }
    let (mut tok, rest) = match get_dot_atom(v) {
        Ok(found) => found,
        Err(Fail::Parse) => match get_word(v) {
            Ok(found) => found,
            Err(Fail::Parse) => {
                let c = at0(v)?;
                if c != '\\' && is_phrase_end(c) {
                    return Err(Fail::Parse);
                }
                (Tok::list(ListKind::Plain, Vec::new()), v)
            }
            Err(fail) => return Err(fail),
        },
        Err(fail) => return Err(fail),
    };
    v = rest;
    tok.prepend(leader);
    if starts(v, |c| c == '\\' || !is_phrase_end(c)) {
        let mut buf = String::new();
        tok.to_str(&mut buf, 0, budget)?;
        buf.push_str(v);
        let (obs, rest) = get_obs_local_part(&buf)?;
        let rem = match v.len().checked_sub(rest.len()).and_then(|at| v.get(at..)) {
            Some(suffix) => Rem::In(suffix),
            None => Rem::Own(rest.to_owned()),
        };
        return Ok((obs, rem));
    }
    Ok((tok, Rem::In(v)))
}

fn get_obs_local_part(v: &str) -> Res<(Tok, &str)> {
    let mut v = v;
    let mut items = Vec::new();
    while let Some(c) = v.chars().next() {
        if c != '\\' && is_phrase_end(c) {
            break;
        }
        if c == '.' || c == '\\' {
            items.push(if c == '.' {
                Tok::dot()
            } else {
                Tok::value_term("\\")
            });
            v = skip(v, c);
            continue;
        }
        let (tok, rest) = match get_word(v) {
            Ok(found) => found,
            Err(Fail::Parse) if is_cfws_leader(c) => get_cfws(v)?,
            Err(fail) => return Err(fail),
        };
        items.push(tok);
        v = rest;
    }
    // The leading / trailing '.' checks index the list like this:
    let first = items.first().ok_or(Fail::Py(INDEX_LIST))?;
    if !first.is_dot() && first.is_cfws() && items.len() < 2 {
        return Err(Fail::Py(INDEX_LIST));
    }
    Ok((Tok::list(ListKind::Plain, items), v))
}

fn get_domain(v: &str) -> Res<(Tok, &str)> {
    let mut v = v;
    let mut leader = None;
    if is_cfws_leader(at0(v)?) {
        let (tok, rest) = get_cfws(v)?;
        leader = Some(tok);
        v = rest;
    }
    if v.is_empty() {
        return Err(Fail::Parse);
    }
    if v.starts_with('[') {
        let (mut tok, rest) = get_domain_literal(v)?;
        tok.prepend(leader);
        return Ok((Tok::list(ListKind::Plain, vec![tok]), rest));
    }
    let (mut tok, rest) = match get_dot_atom(v) {
        Ok(found) => found,
        Err(Fail::Parse) => get_atom(v)?,
        Err(fail) => return Err(fail),
    };
    v = rest;
    if v.starts_with('@') {
        return Err(Fail::Parse);
    }
    tok.prepend(leader);
    let mut items = vec![tok];
    while v.starts_with('.') {
        items.push(Tok::dot());
        let (tok, rest) = get_atom(skip(v, '.'))?;
        items.push(tok);
        v = rest;
    }
    Ok((Tok::list(ListKind::Plain, items), v))
}

fn get_domain_literal(v: &str) -> Res<(Tok, &str)> {
    let mut v = v;
    let mut items = Vec::new();
    if is_cfws_leader(at0(v)?) {
        let (tok, rest) = get_cfws(v)?;
        items.push(tok);
        v = rest;
    }
    if !v.starts_with('[') {
        return Err(Fail::Parse);
    }
    v = skip(v, '[');
    let early_end = |mut items: Vec<Tok>| {
        items.push(Tok::Defect);
        items.push(Tok::value_term("]"));
        Tok::list(ListKind::Plain, items)
    };
    if v.is_empty() {
        return Ok((early_end(items), v));
    }
    items.push(Tok::value_term("["));
    if starts(v, is_wsp) {
        let (tok, rest) = get_fws(v);
        items.push(tok);
        v = rest;
    }
    let (text, rest, _) = ptext_to_endchars(v, &['[', ']'])?;
    items.push(Tok::value_term(&text));
    v = rest;
    if v.is_empty() {
        return Ok((early_end(items), v));
    }
    if starts(v, is_wsp) {
        let (tok, rest) = get_fws(v);
        items.push(tok);
        v = rest;
    }
    if v.is_empty() {
        return Ok((early_end(items), v));
    }
    if !v.starts_with(']') {
        return Err(Fail::Parse);
    }
    items.push(Tok::value_term("]"));
    v = skip(v, ']');
    if starts(v, is_cfws_leader) {
        let (tok, rest) = get_cfws(v)?;
        items.push(tok);
        v = rest;
    }
    Ok((Tok::list(ListKind::Plain, items), v))
}

/// `get_obs_route`; only the remaining input matters to `_getaddr`.
fn get_obs_route(v: &str) -> Res<&str> {
    let mut v = v;
    while let Some(c) = v.chars().next() {
        if c == ',' {
            v = skip(v, c);
        } else if is_cfws_leader(c) {
            v = get_cfws(v)?.1;
        } else {
            break;
        }
    }
    if !v.starts_with('@') {
        return Err(Fail::Parse);
    }
    v = get_domain(skip(v, '@'))?.1;
    while v.starts_with(',') {
        v = skip(v, ',');
        if v.is_empty() {
            break;
        }
        if is_cfws_leader(at0(v)?) {
            v = get_cfws(v)?.1;
        }
        if at0(v)? == '@' {
            v = get_domain(skip(v, '@'))?.1;
        }
    }
    if at0(v).map_err(|_| Fail::Parse)? != ':' {
        return Err(Fail::Parse);
    }
    Ok(skip(v, ':'))
}

fn get_word(v: &str) -> Res<(Tok, &str)> {
    let mut v = v;
    let mut leader = None;
    if is_cfws_leader(at0(v)?) {
        let (tok, rest) = get_cfws(v)?;
        leader = Some(tok);
        v = rest;
    }
    let c = v.chars().next().ok_or(Fail::Parse)?;
    let (mut tok, rest) = if c == '"' {
        get_quoted_string(v)?
    } else if is_special(c) {
        return Err(Fail::Parse);
    } else {
        get_atom(v)?
    };
    tok.prepend(leader);
    Ok((tok, rest))
}

fn get_dot_atom(v: &str) -> Res<(Tok, &str)> {
    let mut v = v;
    let mut items = Vec::new();
    if is_cfws_leader(at0(v)?) {
        let (tok, rest) = get_cfws(v)?;
        items.push(tok);
        v = rest;
    }
    let (tok, rest) = if v.starts_with("=?") {
        match get_encoded_word(v) {
            Ok(found) => found,
            Err(Fail::Parse) => get_dot_atom_text(v)?,
            Err(fail) => return Err(fail),
        }
    } else {
        get_dot_atom_text(v)?
    };
    items.push(tok);
    v = rest;
    if starts(v, is_cfws_leader) {
        let (tok, rest) = get_cfws(v)?;
        items.push(tok);
        v = rest;
    }
    Ok((Tok::list(ListKind::Plain, items), v))
}

fn get_dot_atom_text(v: &str) -> Res<(Tok, &str)> {
    let mut v = v;
    if !starts(v, |c| !is_atom_end(c)) {
        return Err(Fail::Parse);
    }
    let mut items = Vec::new();
    while starts(v, |c| !is_atom_end(c)) {
        let (tok, rest) = get_atext(v)?;
        items.push(tok);
        v = rest;
        if v.starts_with('.') {
            items.push(Tok::dot());
            v = skip(v, '.');
        }
    }
    if items.last().is_some_and(Tok::is_dot) {
        return Err(Fail::Parse);
    }
    Ok((Tok::list(ListKind::Plain, items), v))
}

fn get_atom(v: &str) -> Res<(Tok, &str)> {
    let mut v = v;
    let mut items = Vec::new();
    if starts(v, is_cfws_leader) {
        let (tok, rest) = get_cfws(v)?;
        items.push(tok);
        v = rest;
    }
    if starts(v, is_atom_end) {
        return Err(Fail::Parse);
    }
    let (tok, rest) = if v.starts_with("=?") {
        match get_encoded_word(v) {
            Ok(found) => found,
            Err(Fail::Parse) => get_atext(v)?,
            Err(fail) => return Err(fail),
        }
    } else {
        get_atext(v)?
    };
    items.push(tok);
    v = rest;
    if starts(v, is_cfws_leader) {
        let (tok, rest) = get_cfws(v)?;
        items.push(tok);
        v = rest;
    }
    Ok((Tok::list(ListKind::Plain, items), v))
}

fn get_atext(v: &str) -> Res<(Tok, &str)> {
    let end = v.find(is_atom_end).unwrap_or(v.len());
    if end == 0 {
        return Err(Fail::Parse);
    }
    let (text, rest) = v.split_at(end);
    Ok((Tok::value_term(text), rest))
}

fn get_fws(v: &str) -> (Tok, &str) {
    let rest = py_lstrip(v);
    let raw = v.get(..v.len() - rest.len()).unwrap_or("");
    (Tok::term(TermKind::Space, TermType::Fws, raw), rest)
}

fn get_cfws(v: &str) -> Res<(Tok, &str)> {
    let mut v = v;
    let mut items = Vec::new();
    while let Some(c) = v.chars().next() {
        if is_wsp(c) {
            let (tok, rest) = get_fws(v);
            items.push(tok);
            v = rest;
        } else if c == '(' {
            let (tok, rest) = get_comment(v)?;
            items.push(tok);
            v = rest;
        } else {
            break;
        }
    }
    Ok((Tok::list(ListKind::Cfws, items), v))
}

/// `get_comment`, with the nesting kept on an explicit stack.
fn get_comment(v: &str) -> Res<(Tok, &str)> {
    if !v.starts_with('(') {
        return Err(Fail::Parse);
    }
    let mut v = skip(v, '(');
    // One item list per open comment, innermost last.
    let mut open: Vec<Vec<Tok>> = vec![Vec::new()];
    loop {
        let Some(c) = v.chars().next() else {
            // End of input inside comments: every open comment ends here.
            let mut tok = Tok::list(ListKind::Comment, open.pop().unwrap_or_default());
            while let Some(mut parent) = open.pop() {
                parent.push(tok);
                tok = Tok::list(ListKind::Comment, parent);
            }
            return Ok((tok, v));
        };
        let tok = match c {
            ')' => {
                v = skip(v, c);
                let tok = Tok::list(ListKind::Comment, open.pop().unwrap_or_default());
                if open.is_empty() {
                    return Ok((tok, v));
                }
                tok
            }
            '(' => {
                if open.len() >= PARSE_COMMENT_NESTING_LIMIT {
                    return Err(Fail::Py(RECURSION_CALL));
                }
                open.push(Vec::new());
                v = skip(v, c);
                continue;
            }
            _ if is_wsp(c) => {
                let (tok, rest) = get_fws(v);
                v = rest;
                tok
            }
            _ => {
                let (text, rest, _) = ptext_to_endchars(v, &['(', ')'])?;
                v = rest;
                Tok::term(TermKind::Space, TermType::Other, &text)
            }
        };
        if let Some(items) = open.last_mut() {
            items.push(tok);
        }
    }
}

fn get_quoted_string(v: &str) -> Res<(Tok, &str)> {
    let mut v = v;
    let mut items = Vec::new();
    if starts(v, is_cfws_leader) {
        let (tok, rest) = get_cfws(v)?;
        items.push(tok);
        v = rest;
    }
    let (tok, rest) = get_bare_quoted_string(v)?;
    items.push(tok);
    v = rest;
    if starts(v, is_cfws_leader) {
        let (tok, rest) = get_cfws(v)?;
        items.push(tok);
        v = rest;
    }
    Ok((Tok::list(ListKind::QuotedString, items), v))
}

fn get_bare_quoted_string(v: &str) -> Res<(Tok, &str)> {
    if at0(v)? != '"' {
        return Err(Fail::Parse);
    }
    let mut v = skip(v, '"');
    let mut items: Vec<Tok> = Vec::new();
    if v.starts_with('"') {
        let (tok, rest) = get_qcontent(v)?;
        items.push(tok);
        v = rest;
    }
    while let Some(c) = v.chars().next() {
        if c == '"' {
            break;
        }
        let (tok, rest) = if is_wsp(c) {
            get_fws(v)
        } else if v.starts_with("=?") {
            match get_encoded_word(v) {
                Ok(found) => {
                    // Collapse the white space between two encoded words.
                    let collapse =
                        matches!(items.as_slice(), [.., prev, last] if last.is_fws() && prev.is_encoded_word());
                    if let (true, Some(Tok::Term { kind, .. })) = (collapse, items.last_mut()) {
                        *kind = TermKind::EwSpace;
                    }
                    found
                }
                Err(Fail::Parse) => get_qcontent(v)?,
                Err(fail) => return Err(fail),
            }
        } else {
            get_qcontent(v)?
        };
        items.push(tok);
        v = rest;
    }
    let rest = if v.is_empty() { v } else { skip(v, '"') };
    Ok((Tok::list(ListKind::BareQuotedString, items), rest))
}

fn get_qcontent(v: &str) -> Res<(Tok, &str)> {
    let (text, rest, _) = ptext_to_endchars(v, &['"'])?;
    Ok((Tok::value_term(&text), rest))
}

/// `_get_ptext_to_endchars`: unquotes quoted pairs up to an end char or white space.
fn ptext_to_endchars<'v>(v: &'v str, ends: &[char]) -> Res<(String, &'v str, bool)> {
    let frag_end = v.find(is_wsp).unwrap_or(v.len());
    if frag_end == 0 {
        // `pos` is never bound when the fragment is empty.
        return Err(Fail::Py(UNBOUND_POS));
    }
    let mut out = String::new();
    let mut escape = false;
    let mut had_qp = false;
    let mut stop = frag_end;
    for (i, c) in v.get(..frag_end).unwrap_or("").char_indices() {
        if c == '\\' {
            if escape {
                escape = false;
                had_qp = true;
            } else {
                escape = true;
                continue;
            }
        }
        if escape {
            escape = false;
        } else if ends.contains(&c) {
            stop = i;
            break;
        }
        out.push(c);
    }
    Ok((out, v.get(stop..).unwrap_or(""), had_qp))
}

// ---------------------------------------------------------------------------
// RFC 2047 encoded words
// ---------------------------------------------------------------------------

fn get_encoded_word(v: &str) -> Res<(Tok, &str)> {
    let body = v.strip_prefix("=?").ok_or(Fail::Parse)?;
    let (tok, remstr) = body.split_once("?=").ok_or(Fail::Parse)?;
    let mut tok = tok.to_owned();
    let mut rest = remstr;
    let mut rc = remstr.chars();
    if let (Some(a), Some(b)) = (rc.next(), rc.next()) {
        if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() && tok.matches('?').count() < 2 {
            // The "?=" belonged to a quoted-printable escape: extend the word.
            let (more, after) = remstr.split_once("?=").unwrap_or((remstr, ""));
            tok.push_str("?=");
            tok.push_str(more);
            rest = after;
        }
    }
    let text = decode_encoded_word(&tok).ok_or(Fail::Parse)?;
    let mut items = Vec::new();
    let mut text: &str = &text;
    while !text.is_empty() {
        if starts(text, is_wsp) {
            let (fws, after) = get_fws(text);
            items.push(fws);
            text = after;
            continue;
        }
        let end = text.find(is_wsp).unwrap_or(text.len());
        let (chars, after) = text.split_at(end);
        items.push(Tok::value_term(chars));
        text = after;
    }
    Ok((Tok::list(ListKind::EncodedWord, items), rest))
}

/// `_encoded_words.decode("=?" + tok + "?=")`; `None` when Python raises
/// `ValueError` or `KeyError`.  Undecodable bytes (lone surrogates in Python)
/// become U+FFFD.
fn decode_encoded_word(tok: &str) -> Option<String> {
    let mut parts = tok.split('?');
    let (charset, cte, data) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let charset = charset.split('*').next().unwrap_or("");
    if !data.is_ascii() {
        return None;
    }
    let bytes = match cte {
        "q" | "Q" => decode_q(data.as_bytes()),
        "b" | "B" => decode_b(data.as_bytes()),
        _ => return None,
    };
    if charset.contains('\0') {
        return None;
    }
    Some(decode_charset(charset, &bytes))
}

fn decode_q(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while let Some(&byte) = data.get(i) {
        if byte == b'=' {
            if let (Some(hi), Some(lo)) = (data.get(i + 1).and_then(hex_val), data.get(i + 2).and_then(hex_val)) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(if byte == b'_' { b' ' } else { byte });
        i += 1;
    }
    out
}

fn hex_val(b: &u8) -> Option<u8> {
    char::from(*b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// `_encoded_words.decode_b`, with its three fallbacks.
fn decode_b(data: &[u8]) -> Vec<u8> {
    let pad_err = data.len() % 4;
    let mut padded = data.to_vec();
    if pad_err != 0 {
        padded.extend(std::iter::repeat_n(b'=', 4 - pad_err));
    }
    if let Some(out) = a2b_base64(&padded, true) {
        return out;
    }
    if let Some(out) = a2b_base64(data, false) {
        return out;
    }
    let mut padded = data.to_vec();
    padded.extend_from_slice(b"==");
    a2b_base64(&padded, false).unwrap_or_else(|| data.to_vec())
}

fn b64_val(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// CPython 3.11's `binascii.a2b_base64(data, strict_mode=strict)`; `None` on `binascii.Error`.
fn a2b_base64(data: &[u8], strict: bool) -> Option<Vec<u8>> {
    if strict && data.first() == Some(&b'=') {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 3);
    let mut quad_pos = 0u8;
    let mut left = 0u32;
    let mut pads = 0u8;
    let mut padding_started = false;
    for (i, &byte) in data.iter().enumerate() {
        if byte == b'=' {
            padding_started = true;
            if strict && quad_pos == 0 {
                return None;
            }
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    if strict && i + 1 < data.len() {
                        return None;
                    }
                    return Some(out);
                }
            }
            continue;
        }
        let Some(val) = b64_val(byte) else {
            if strict {
                return None;
            }
            continue;
        };
        if strict && padding_started {
            return None;
        }
        pads = 0;
        // Every value pushed below is masked to 8 bits first.
        let byte_of = |x: u32| u8::try_from(x & 0xff).unwrap_or(0);
        match quad_pos {
            0 => {
                quad_pos = 1;
                left = val;
            }
            1 => {
                quad_pos = 2;
                out.push(byte_of(left << 2 | val >> 4));
                left = val & 0x0f;
            }
            2 => {
                quad_pos = 3;
                out.push(byte_of(left << 4 | val >> 2));
                left = val & 0x03;
            }
            _ => {
                quad_pos = 0;
                out.push(byte_of(left << 6 | val));
                left = 0;
            }
        }
    }
    if quad_pos == 0 { Some(out) } else { None }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Utf8,
    Utf8Sig,
    Ascii,
    Latin1,
}

/// CPython's codec lookup for the few codecs modelled here; `None` means the
/// name is treated like an unknown charset (decoded as ASCII).
fn lookup_codec(name: &str) -> Option<Codec> {
    // Lower-case ASCII letters, digits and '.'; every run of other bytes
    // between two kept characters becomes a single '_'.
    let mut norm = String::new();
    let mut punct = false;
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' {
            if punct && !norm.is_empty() {
                norm.push('_');
            }
            punct = false;
            norm.push(char::from(b.to_ascii_lowercase()));
        } else {
            punct = true;
        }
    }
    let alias = |n: &str| -> Option<Codec> {
        Some(match n {
            "cp65001" | "u8" | "utf" | "utf8" | "utf8_ucs2" | "utf8_ucs4" => Codec::Utf8,
            "646" | "ansi_x3.4_1968" | "ansi_x3.4_1986" | "ansi_x3_4_1968" | "cp367" | "csascii"
            | "ibm367" | "iso646_us" | "iso_646.irv_1991" | "iso_ir_6" | "us" | "us_ascii" => Codec::Ascii,
            "8859" | "cp819" | "csisolatin1" | "ibm819" | "iso8859" | "iso8859_1" | "iso_8859_1"
            | "iso_8859_1_1987" | "iso_ir_100" | "l1" | "latin" | "latin1" => Codec::Latin1,
            _ => return None,
        })
    };
    let aliased = alias(&norm).or_else(|| alias(&norm.replace('.', "_")));
    if aliased.is_some() {
        return aliased;
    }
    // Without an alias the normalized name itself is imported as a module.
    match norm.as_str() {
        "utf_8" => Some(Codec::Utf8),
        "utf_8_sig" => Some(Codec::Utf8Sig),
        "ascii" => Some(Codec::Ascii),
        "latin_1" => Some(Codec::Latin1),
        _ => None,
    }
}

fn decode_charset(charset: &str, bytes: &[u8]) -> String {
    match lookup_codec(charset) {
        Some(Codec::Utf8) => decode_utf8_lossy(bytes),
        Some(Codec::Utf8Sig) => decode_utf8_lossy(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)),
        Some(Codec::Latin1) => bytes.iter().map(|&b| char::from(b)).collect(),
        Some(Codec::Ascii) | None => bytes
            .iter()
            .map(|&b| if b.is_ascii() { char::from(b) } else { '\u{fffd}' })
            .collect(),
    }
}

/// UTF-8 with `surrogateescape`, except that each escaped byte becomes U+FFFD.
fn decode_utf8_lossy(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                out.push_str(text);
                return out;
            }
            Err(err) => {
                let (good, bad) = rest.split_at(err.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or(""));
                let bad_len = err.error_len().unwrap_or(bad.len()).max(1);
                out.extend(std::iter::repeat_n('\u{fffd}', bad_len.min(bad.len())));
                rest = bad.get(bad_len..).unwrap_or(&[]);
            }
        }
    }
}
