//! Label selectors (`labelSelector`) and field selectors (`fieldSelector`),
//! parsed with the grammar of apimachinery's `labels.Parse` / `fields.ParseSelector`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::store::{Res, value_at};
use super::validate::{is_label_value, is_qualified_name};

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(BTreeSet<String>),
    NotIn(BTreeSet<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector {
    reqs: Vec<Requirement>,
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
}

fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '!' if next == Some('=') => {
                out.push(Tok::NotEq);
                i += 2;
            }
            '!' => {
                out.push(Tok::Not);
                i += 1;
            }
            '=' if next == Some('=') => {
                out.push(Tok::DoubleEq);
                i += 2;
            }
            '=' => {
                out.push(Tok::Eq);
                i += 1;
            }
            '>' => {
                out.push(Tok::Gt);
                i += 1;
            }
            '<' => {
                out.push(Tok::Lt);
                i += 1;
            }
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"!=<>(),".contains(chars[i])
                {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
        }
    }
    out
}

fn check_key(key: &str) -> Result<(), String> {
    if is_qualified_name(key) {
        Ok(())
    } else {
        Err(format!(
            "unable to parse requirement: <nil>: Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

fn check_value(v: &str) -> Result<(), String> {
    if is_label_value(v) {
        Ok(())
    } else {
        Err(format!(
            "unable to parse requirement: values[0]: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

impl LabelSelector {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let toks = tokenize(s);
        let mut reqs = Vec::new();
        let mut i = 0;
        let found = |t: Option<&Tok>| match t {
            None => "end of string".to_string(),
            Some(Tok::Ident(s)) => format!("'{s}'"),
            Some(t) => format!("{t:?}"),
        };
        while i < toks.len() {
            let req = match &toks[i] {
                Tok::Not => {
                    let Some(Tok::Ident(key)) = toks.get(i + 1) else {
                        return Err(format!(
                            "unable to parse requirement: found {}, expected: identifier",
                            found(toks.get(i + 1))
                        ));
                    };
                    check_key(key)?;
                    i += 2;
                    Requirement {
                        key: key.clone(),
                        op: Op::DoesNotExist,
                    }
                }
                Tok::Ident(key) => {
                    check_key(key)?;
                    let key = key.clone();
                    i += 1;
                    match toks.get(i) {
                        None | Some(Tok::Comma) => Requirement {
                            key,
                            op: Op::Exists,
                        },
                        Some(Tok::Eq | Tok::DoubleEq | Tok::NotEq) => {
                            let neg = toks[i] == Tok::NotEq;
                            i += 1;
                            let value = match toks.get(i) {
                                Some(Tok::Ident(v)) => {
                                    i += 1;
                                    v.clone()
                                }
                                None | Some(Tok::Comma) => String::new(),
                                t => {
                                    return Err(format!(
                                        "unable to parse requirement: found {}, expected: identifier",
                                        found(t)
                                    ));
                                }
                            };
                            check_value(&value)?;
                            let op = if neg { Op::NotEq(value) } else { Op::Eq(value) };
                            Requirement { key, op }
                        }
                        Some(Tok::Gt | Tok::Lt) => {
                            let gt = toks[i] == Tok::Gt;
                            i += 1;
                            let Some(Tok::Ident(v)) = toks.get(i) else {
                                return Err(format!(
                                    "unable to parse requirement: found {}, expected: identifier",
                                    found(toks.get(i))
                                ));
                            };
                            i += 1;
                            let n: i64 = v.parse().map_err(|_| {
                                format!(
                                    "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {v}"
                                )
                            })?;
                            let op = if gt { Op::Gt(n) } else { Op::Lt(n) };
                            Requirement { key, op }
                        }
                        Some(Tok::Ident(kw)) if kw == "in" || kw == "notin" => {
                            let is_in = kw == "in";
                            i += 1;
                            if toks.get(i) != Some(&Tok::Open) {
                                return Err(format!(
                                    "unable to parse requirement: found {}, expected: '('",
                                    found(toks.get(i))
                                ));
                            }
                            i += 1;
                            let mut values = BTreeSet::new();
                            loop {
                                match toks.get(i) {
                                    Some(Tok::Ident(v)) => {
                                        check_value(v)?;
                                        values.insert(v.clone());
                                        i += 1;
                                    }
                                    Some(Tok::Comma) | Some(Tok::Close) => {
                                        // an empty value between commas
                                        values.insert(String::new());
                                    }
                                    t => {
                                        return Err(format!(
                                            "unable to parse requirement: found {}, expected: ',', ')' or identifier",
                                            found(t)
                                        ));
                                    }
                                }
                                match toks.get(i) {
                                    Some(Tok::Comma) => i += 1,
                                    Some(Tok::Close) => {
                                        i += 1;
                                        break;
                                    }
                                    t => {
                                        return Err(format!(
                                            "unable to parse requirement: found {}, expected: ',' or ')'",
                                            found(t)
                                        ));
                                    }
                                }
                            }
                            if values.len() == 1 && values.contains("") && is_in {
                                // `a in ()` is rejected by the real parser
                                return Err(
                                    "unable to parse requirement: for 'in', 'notin' operators, values set can't be empty"
                                        .to_string(),
                                );
                            }
                            let op = if is_in {
                                Op::In(values)
                            } else {
                                Op::NotIn(values)
                            };
                            Requirement { key, op }
                        }
                        t => {
                            return Err(format!(
                                "unable to parse requirement: found {}, expected: in, notin, =, ==, !=, gt, lt",
                                found(t)
                            ));
                        }
                    }
                }
                t => {
                    return Err(format!(
                        "unable to parse requirement: found {}, expected: !, identifier",
                        found(Some(t))
                    ));
                }
            };
            reqs.push(req);
            match toks.get(i) {
                None => {}
                Some(Tok::Comma) => {
                    i += 1;
                    if i >= toks.len() {
                        return Err("unable to parse requirement: found end of string, expected: identifier".into());
                    }
                }
                t => {
                    return Err(format!(
                        "unable to parse requirement: found {}, expected: ','",
                        found(t)
                    ));
                }
            }
        }
        Ok(LabelSelector { reqs })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Does an object (its `metadata.labels`) match?
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let labels = value_at(obj, &["metadata", "labels"]).and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.reqs.iter().all(|r| match &r.op {
            Op::Eq(v) => get(&r.key) == Some(v.as_str()),
            Op::NotEq(v) => get(&r.key) != Some(v.as_str()),
            Op::In(vs) => get(&r.key).is_some_and(|x| vs.contains(x)),
            Op::NotIn(vs) => get(&r.key).is_none_or(|x| !vs.contains(x)),
            Op::Exists => get(&r.key).is_some(),
            Op::DoesNotExist => get(&r.key).is_none(),
            Op::Gt(n) => get(&r.key)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            Op::Lt(n) => get(&r.key)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

/// The fields each resource can be selected by, and where they live.
fn field_path(res: Res, field: &str) -> Option<&'static [&'static str]> {
    Some(match (res, field) {
        (_, "metadata.name") => &["metadata", "name"],
        (_, "metadata.namespace") => &["metadata", "namespace"],
        (Res::Jobs, "status.successful") => &["status", "succeeded"],
        (Res::Pods, "spec.nodeName") => &["spec", "nodeName"],
        (Res::Pods, "spec.restartPolicy") => &["spec", "restartPolicy"],
        (Res::Pods, "spec.schedulerName") => &["spec", "schedulerName"],
        (Res::Pods, "spec.serviceAccountName") => &["spec", "serviceAccountName"],
        (Res::Pods, "spec.hostNetwork") => &["spec", "hostNetwork"],
        (Res::Pods, "status.phase") => &["status", "phase"],
        (Res::Pods, "status.podIP") => &["status", "podIP"],
        (Res::Pods, "status.nominatedNodeName") => &["status", "nominatedNodeName"],
        _ => return None,
    })
}

fn field_value(res: Res, obj: &Value, field: &str) -> String {
    let Some(path) = field_path(res, field) else {
        return String::new();
    };
    match value_at(obj, path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ if field == "spec.hostNetwork" => "false".into(),
        _ if field == "status.successful" => "0".into(),
        _ => String::new(),
    }
}

impl FieldSelector {
    pub(crate) fn parse(res: Res, s: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        // split on unescaped commas
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    cur.push(c);
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                ',' => parts.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        parts.push(cur);
        for part in parts {
            if part.trim().is_empty() {
                continue;
            }
            let (field, neg, raw) = if let Some((f, v)) = part.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, false, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let field = field.trim();
            if field_path(res, field).is_none() {
                return Err(format!("field label not supported: {field}"));
            }
            let mut value = String::new();
            let mut it = raw.chars();
            while let Some(c) = it.next() {
                if c == '\\' {
                    match it.next() {
                        Some(n @ ('\\' | ',' | '=')) => value.push(n),
                        _ => {
                            return Err(format!(
                                "invalid field selector: invalid escape sequence in '{raw}'"
                            ));
                        }
                    }
                } else {
                    value.push(c);
                }
            }
            terms.push((field.to_string(), neg, value));
        }
        Ok(FieldSelector { terms })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub(crate) fn matches(&self, res: Res, obj: &Value) -> bool {
        self.terms
            .iter()
            .all(|(f, neg, v)| (field_value(res, obj, f) == *v) != *neg)
    }

    /// The single `metadata.namespace=X` / `metadata.name=X` value, if selected by equality.
    pub(crate) fn equals(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|(f, neg, _)| f == field && !neg)
            .map(|(_, _, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "n", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn label_selectors_follow_kubernetes_grammar() {
        let o = obj(json!({"app": "flink", "tier": "batch"}));
        let ok = |s: &str| LabelSelector::parse(s).map(|sel| sel.matches(&o));
        assert_eq!(ok("app=flink"), Ok(true));
        assert_eq!(ok("app==flink,tier=batch"), Ok(true));
        assert_eq!(ok("app!=flink"), Ok(false));
        assert_eq!(ok("app in (x, flink)"), Ok(true));
        assert_eq!(ok("app notin (flink)"), Ok(false));
        assert_eq!(ok("missing notin (flink)"), Ok(true));
        assert_eq!(ok("app,!missing"), Ok(true));
        assert_eq!(ok("!app"), Ok(false));
        assert_eq!(ok(""), Ok(true));
        assert!(LabelSelector::parse("app in flink").is_err());
        assert!(LabelSelector::parse("app=(").is_err());
        assert!(LabelSelector::parse("a b").is_err());
        assert!(LabelSelector::parse("app=flink,").is_err());
    }

    #[test]
    fn field_selectors_know_their_fields() {
        let o = obj(json!({}));
        let sel = FieldSelector::parse(Res::Jobs, "metadata.name=n,metadata.namespace!=x");
        assert_eq!(sel.map(|s| s.matches(Res::Jobs, &o)), Ok(true));
        assert!(FieldSelector::parse(Res::Jobs, "spec.foo=1").is_err());
        assert!(FieldSelector::parse(Res::Jobs, "status.phase=Running").is_err());
        assert!(FieldSelector::parse(Res::Pods, "status.phase=Running").is_ok());
    }
}
