//! Invocation payloads: which keys a manual invocation may carry, and the
//! EventBridge envelope a schedule sends. A key nobody knows is an error that
//! names it and the accepted ones, before anything is read or written: a
//! typo such as `{"dryRun": true}` must never turn a dry run into a real run.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::Error;

/// The top-level keys of an EventBridge event (scheduled events included).
/// Such an event carries no instruction of ours: it means "everything, for real".
pub const EVENTBRIDGE_ENVELOPE: [&str; 10] = [
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
    "replay-name",
];

/// Reads a payload into `T` (a manual request whose fields are all
/// optional): `null`, `{}` and an EventBridge event give `T::default()`;
/// an object whose keys are all in `accepted` is deserialized; anything else
/// is an [`Error::Input`] naming what was wrong.
pub fn parse<T: DeserializeOwned + Default>(
    payload: &Value,
    accepted: &[&str],
) -> Result<T, Error> {
    let object = match payload {
        Value::Null => return Ok(T::default()),
        Value::Object(o) => o,
        other => {
            return Err(Error::Input(format!(
                "payload: expected a JSON object with {} or an EventBridge scheduled event, got {}",
                list(accepted),
                kind_of(other)
            )));
        }
    };
    if is_eventbridge_event(object) {
        if let Some(key) = object
            .keys()
            .find(|k| !EVENTBRIDGE_ENVELOPE.contains(&k.as_str()))
        {
            return Err(Error::Input(format!(
                "payload: unknown key {key:?} in an EventBridge event (its keys are {}; \
                 a manual invocation sends only {})",
                list(&EVENTBRIDGE_ENVELOPE),
                list(accepted)
            )));
        }
        return Ok(T::default());
    }
    if let Some(key) = object.keys().find(|k| !accepted.contains(&k.as_str())) {
        return Err(Error::Input(format!(
            "payload: unknown key {key:?} (accepted: {}; or an EventBridge scheduled event)",
            list(accepted)
        )));
    }
    serde_json::from_value(payload.clone())
        .map_err(|e| Error::Input(format!("payload: {e} (accepted: {})", list(accepted))))
}

/// EventBridge (rules and Scheduler) stamps every event with these two.
fn is_eventbridge_event(object: &Map<String, Value>) -> bool {
    object.contains_key("detail-type") && object.contains_key("source")
}

fn list(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Req {
        #[serde(default)]
        dry_run: bool,
        #[serde(default)]
        job_ids: Option<Vec<String>>,
    }

    const ACCEPTED: [&str; 2] = ["job_ids", "dry_run"];

    fn parse_req(v: Value) -> Result<Req, String> {
        parse::<Req>(&v, &ACCEPTED).map_err(|e| e.to_string())
    }

    #[test]
    fn a_misspelt_key_is_an_error_naming_it_and_the_accepted_ones() {
        for (payload, key) in [
            (json!({"dryRun": true}), "dryRun"),
            (json!({"jobids": ["x"]}), "jobids"),
            (json!({"dry_run": true, "extra": 1}), "extra"),
        ] {
            let e = parse_req(payload).expect_err("an unknown key must be refused");
            assert!(e.contains(&format!("{key:?}")), "{e}");
            assert!(e.contains("\"job_ids\", \"dry_run\""), "{e}");
        }
    }

    #[test]
    fn scheduled_events_and_empty_payloads_mean_a_full_real_run() {
        let scheduled: Value = serde_json::from_str(include_str!("../../../events/scheduled.json"))
            .unwrap_or_default();
        assert!(
            scheduled.get("detail-type").is_some(),
            "fixture is an EventBridge event"
        );
        for payload in [
            scheduled,
            json!(null),
            json!({}),
            json!({"detail-type": "Scheduled Event", "source": "aws.scheduler"}),
        ] {
            assert_eq!(parse_req(payload), Ok(Req::default()));
        }
    }

    #[test]
    fn manual_keys_mixed_into_an_eventbridge_event_are_refused() {
        let e = parse_req(
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "dry_run": true}),
        )
        .expect_err("a dry run hidden in an event must not run for real");
        assert!(e.contains("\"dry_run\""), "{e}");
    }

    #[test]
    fn each_request_accepts_exactly_its_listed_keys() {
        use crate::runs::cleanup::CleanupRequest;
        use crate::runs::sync::SyncRequest;
        // Every listed key set: a key listed but not a field would be refused
        // by serde, a field not listed by `parse`.
        let sync = json!({"job_ids": ["a"], "dry_run": true, "clusters": ["prod"]});
        let keys: Vec<&str> = sync
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys.len(), SyncRequest::KEYS.len());
        assert!(keys.iter().all(|k| SyncRequest::KEYS.contains(k)));
        assert_eq!(
            SyncRequest::from_payload(&sync).map_err(|e| e.to_string()),
            Ok(SyncRequest {
                job_ids: Some(vec!["a".into()]),
                clusters: Some(vec!["prod".into()]),
                dry_run: true
            })
        );
        assert_eq!(CleanupRequest::KEYS, ["dry_run"]);
        assert_eq!(
            parse::<CleanupRequest>(&json!({"dry_run": true}), &CleanupRequest::KEYS)
                .map_err(|e| e.to_string()),
            Ok(CleanupRequest { dry_run: true })
        );
        let empty = SyncRequest::from_payload(&json!({"job_ids": []}));
        assert!(
            empty.is_err_and(|e| e.to_string().contains("empty")),
            "an empty list is refused"
        );
    }

    #[test]
    fn accepted_keys_are_read_and_wrong_types_named() {
        assert_eq!(
            parse_req(json!({"dry_run": true, "job_ids": ["a"]})),
            Ok(Req {
                dry_run: true,
                job_ids: Some(vec!["a".into()])
            })
        );
        let e = parse_req(json!({"dry_run": "yes"})).expect_err("a string is no boolean");
        assert!(e.contains("boolean"), "{e}");
        let e = parse_req(json!(["dry_run"])).expect_err("an array is no payload");
        assert!(e.contains("an array"), "{e}");
    }
}
