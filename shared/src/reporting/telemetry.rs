//! Logging setup shared by the functions: JSON lines in Lambda (CloudWatch
//! parses them), readable text elsewhere; level from `RUST_LOG`, default info.
//!
//! `tracing` fields are scalars, so a run's maps (time per phase, transitions
//! by kind) are recorded as JSON text with [`json`]; in JSON lines the
//! fields named in [`JSON_FIELDS`] are then written as JSON values, so
//! CloudWatch Logs Insights reads `phases_ms.write` like any other field.

use std::io::Write;

use tracing_subscriber::EnvFilter;

/// Fields recorded as JSON text that JSON log lines carry as JSON values.
pub const JSON_FIELDS: [&str; 3] = ["phases_ms", "transitions", "kept"];

/// A value as JSON text, for a field named in [`JSON_FIELDS`].
pub fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("\"unserializable: {e}\""))
}

/// Installs the tracing subscriber: JSON lines in Lambda (or with
/// `LOG_FORMAT=json`), readable lines elsewhere; `RUST_LOG` filters.
pub fn init() {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // `cargo lambda watch` sets AWS_LAMBDA_MAX_CONCURRENCY=1 (its default
    // `--concurrency`), and the runtime then warns on every cold start that
    // it runs invocations one at a time. One at a time is what these
    // functions want (a second concurrent sync would only race the first),
    // so at 1 the warning says nothing; a larger value still warns. It is the
    // only warning of that module on the sequential path, and a RUST_LOG the
    // user set is left as it is.
    if std::env::var("AWS_LAMBDA_MAX_CONCURRENCY").is_ok_and(|v| v.trim() == "1")
        && std::env::var_os("RUST_LOG").is_none()
        && let Ok(quiet) = "lambda_runtime::runtime=error".parse()
    {
        filter = filter.add_directive(quiet);
    }
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json =
        in_lambda || std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // Lambda stamps each line itself; a second timestamp only costs bytes.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .without_time()
            .with_writer(|| JsonLine(Vec::new()))
            .try_init()
    } else {
        builder.try_init()
    };
}

/// One JSON log line, buffered while the formatter writes it and put out
/// on drop (the formatter takes one writer per event) with its
/// [`JSON_FIELDS`] turned from text into JSON values.
struct JsonLine(Vec<u8>);

impl Write for JsonLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for JsonLine {
    fn drop(&mut self) {
        let line = nest_json_fields(&self.0);
        let _ = std::io::stdout().lock().write_all(&line);
    }
}

/// The line with each [`JSON_FIELDS`] string that holds JSON replaced by
/// that JSON; any other line as it was.
fn nest_json_fields(line: &[u8]) -> Vec<u8> {
    let has_field = JSON_FIELDS.iter().any(|f| {
        let key = format!("\"{f}\":\"");
        line.windows(key.len()).any(|w| w == key.as_bytes())
    });
    if !has_field {
        return line.to_vec();
    }
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice(line) else {
        return line.to_vec();
    };
    for name in JSON_FIELDS {
        if let Some(serde_json::Value::String(text)) = fields.get(name)
            && let Ok(value) = serde_json::from_str::<serde_json::Value>(text)
        {
            fields.insert(name.to_string(), value);
        }
    }
    let mut out = serde_json::to_vec(&fields).unwrap_or_else(|_| line.to_vec());
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_become_json_values_and_other_lines_stay_as_they_are() {
        let line = br#"{"level":"INFO","message":"sync run done","phases_ms":"{\"read\":4,\"write\":31}","transitions":"{\"CREATED->FAILED\":2}","job_id":"{\"not\":1}"}
"#;
        let out: serde_json::Value =
            serde_json::from_slice(&nest_json_fields(line)).unwrap_or_default();
        assert_eq!(out["phases_ms"]["write"], 31);
        assert_eq!(out["transitions"]["CREATED->FAILED"], 2);
        assert_eq!(
            out["job_id"], "{\"not\":1}",
            "only the named fields are nested"
        );
        let plain = b"{\"level\":\"INFO\",\"message\":\"status changed\"}\n";
        assert_eq!(nest_json_fields(plain), plain.to_vec());
        let garbled = b"{\"phases_ms\":\"{nope\"}\n";
        assert_eq!(nest_json_fields(garbled), garbled.to_vec());
    }
}
