//! Naming the field of a body nested too deeply to parse.
//!
//! serde_json refuses JSON nested more than 128 levels ("recursion limit exceeded"), so no
//! recursive code of ours ever meets such a value; but its error names a line and column, not a
//! field. [`too_deep`] finds the field by scanning the text once, iteratively (no recursion, so
//! any depth is safe), and only on that error path: accepted bodies never pay for it.

/// serde_json's message for a body over its nesting limit.
const RECURSION_LIMIT: &str = "recursion limit exceeded";

/// Whether a parse error `message` is serde_json's nesting limit.
pub fn is_too_deep(message: &str) -> bool {
    message.contains(RECURSION_LIMIT)
}

#[derive(Debug)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

struct Frame<'a> {
    array: bool,
    index: usize,
    key: Option<&'a str>,
    expecting_key: bool,
}

/// The contract field holding the first value nested deeper than `limit` in `text`, e.g.
/// `events[3].properties` or `context`: the path down to and including the first object key
/// below the batch array (`events` or `batch`). `None` when nothing is that deep.
pub fn too_deep(text: &str, limit: usize) -> Option<String> {
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                i = start;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(top) = stack.last_mut()
                    && !top.array
                    && top.expecting_key
                {
                    top.key = text.get(start..i.min(bytes.len()));
                }
            }
            open @ (b'{' | b'[') => {
                if stack.len() >= limit {
                    return Some(field(&stack));
                }
                stack.push(Frame { array: open == b'[', index: 0, key: None, expecting_key: open == b'{' });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(top) = stack.last_mut() {
                    if top.array {
                        top.index += 1;
                    } else {
                        top.expecting_key = true;
                        top.key = None;
                    }
                }
            }
            b':' => {
                if let Some(top) = stack.last_mut() {
                    top.expecting_key = false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn field(stack: &[Frame<'_>]) -> String {
    if stack.first().is_none_or(|frame| frame.array) {
        return "body".to_owned();
    }
    let steps = stack
        .iter()
        .map(|frame| if frame.array { Step::Index(frame.index) } else { Step::Key(frame.key.unwrap_or("?")) });
    let mut path = String::new();
    for (position, step) in steps.enumerate() {
        match step {
            // Only the position in the batch array is named; deeper arrays are the value's own.
            Step::Index(index) if position == 1 => path.push_str(&format!("[{index}]")),
            Step::Index(_) => break,
            Step::Key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                if !(position == 0 && matches!(key, "events" | "batch")) {
                    break;
                }
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
    }

    #[test]
    fn the_field_holding_a_deep_value_is_named() {
        let deep = nested(200);
        let single = format!(r#"{{"event_type":"custom","properties":{deep}}}"#);
        assert_eq!(too_deep(&single, 100).as_deref(), Some("properties"));
        let batch = format!(
            r#"{{"sent_at":"x","events":[{{"event_type":"page_view","page":{{"url":"https://a/,[{{"}}}},{{"context":{{"screen":{deep}}}}}]}}"#
        );
        assert_eq!(too_deep(&batch, 100).as_deref(), Some("events[1].context"));
        let segment = format!(r#"{{"batch":[{{"type":"track","properties":{{"b\"]":[[{deep}]]}}}}]}}"#);
        assert_eq!(too_deep(&segment, 100).as_deref(), Some("batch[0].properties"));
        assert_eq!(too_deep(&"[".repeat(300), 100).as_deref(), Some("body"));
        let element = format!(r#"{{"events":[{{}},{}]}}"#, "[".repeat(300));
        assert_eq!(too_deep(&element, 100).as_deref(), Some("events[1]"));
    }

    #[test]
    fn shallow_bodies_have_no_deep_field_and_any_depth_is_scanned_without_recursion() {
        assert_eq!(too_deep(&nested(50), 100), None);
        assert_eq!(too_deep(r#"{"a":"{{{{[[[["}"#, 2), None);
        let enormous = nested(1_000_000);
        assert_eq!(too_deep(&enormous, 128).as_deref(), Some("a"));
        let error = serde_json::from_str::<serde_json::Value>(&enormous).unwrap_err();
        assert!(is_too_deep(&error.to_string()), "{error}");
    }
}
