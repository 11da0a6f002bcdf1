//! A tiny JSON writer: reports are small and a guest need not carry serde.

/// A JSON value borrowed from the caller.
pub enum Value<'a> {
    Str(&'a str),
    Int(i64),
    Object(&'a [(&'a str, Value<'a>)]),
}

/// Renders `members` as a compact JSON object, keys in the given order.
pub fn object(members: &[(&str, Value<'_>)]) -> String {
    let mut out = String::new();
    write_object(&mut out, members);
    out
}

fn write_object(out: &mut String, members: &[(&str, Value<'_>)]) {
    out.push('{');
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, key);
        out.push(':');
        match value {
            Value::Str(s) => write_str(out, s),
            Value::Int(n) => out.push_str(&n.to_string()),
            Value::Object(m) => write_object(out, m),
        }
    }
    out.push('}');
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_nests() {
        let inner = [("a\"b", Value::Str("x\ny")), ("n", Value::Int(-3))];
        assert_eq!(
            object(&[("t", Value::Str("bank")), ("f", Value::Object(&inner))]),
            r#"{"t":"bank","f":{"a\"b":"x\ny","n":-3}}"#
        );
    }
}
